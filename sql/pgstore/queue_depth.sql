-- How many messages wait in a pgmq queue, and the enqueue time of the oldest.
-- Zero and NULL for a queue that does not exist, or is not a table pgstore trusts
-- (see queue_table.sql): this runs as its caller, often an operator's superuser.
CREATE OR REPLACE FUNCTION pgstore.queue_depth(
  queue text,
  OUT depth bigint,
  OUT oldest timestamptz
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _table regclass := pgstore.queue_table(queue_depth.queue);
BEGIN
  depth := 0;
  IF _table IS NULL THEN
    RETURN;
  END IF;
  EXECUTE format('SELECT count(*), min(enqueued_at) FROM %s', _table)
    INTO depth, oldest;
END;
$$;
