-- Makes the messages of `queue` that workers which are gone had read visible again at
-- once, instead of after their visibility timeout; returns how many.
--
-- Each worker session holds the advisory lock (1885823854, token) for as long as it
-- lives, and records which queue messages it read under that token
-- (pgstore.queue_claims). A claim whose lock nobody holds belongs to a session that
-- has ended. Handing its messages out again is safe whatever that worker did: the
-- handler transaction locks the queue row and checks its read count, so a message is
-- applied once even if two workers read it.
CREATE OR REPLACE FUNCTION pgstore.release_dead_claims(
  queue text
)
RETURNS int
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _table regclass := pgstore.queue_table(release_dead_claims.queue);
  _ids bigint[];
  _released int;
BEGIN
  WITH dead AS (
    DELETE FROM pgstore.queue_claims c
     WHERE c.queue = release_dead_claims.queue
       AND NOT EXISTS (
         SELECT FROM pg_catalog.pg_locks l
          WHERE l.locktype = 'advisory'
            AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                               WHERE d.datname = current_database())
            AND l.classid = 1885823854::oid
            AND l.objid = c.token::oid
            AND l.objsubid = 2
            AND l.granted)
    RETURNING c.msg_ids)
  SELECT array_agg(i) INTO _ids FROM dead, unnest(dead.msg_ids) AS i;
  IF _ids IS NULL OR _table IS NULL THEN
    RETURN 0;
  END IF;
  EXECUTE format('UPDATE %s SET vt = now() WHERE msg_id = ANY ($1) AND vt > now()', _table)
    USING _ids;
  GET DIAGNOSTICS _released = ROW_COUNT;
  RETURN _released;
END;
$$;
