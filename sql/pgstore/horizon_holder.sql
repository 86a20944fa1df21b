-- The transaction that holds the global position horizon (and every subscriber) back:
-- the oldest one with a transaction id still running, in any database of the cluster,
-- or a prepared transaction. No row when nothing holds it.
--
-- Found through pg_locks (every transaction holds a lock on its own id, and pg_locks
-- shows every session to every login), so a login without pg_read_all_stats still
-- learns the pid, database and role; the age, state and query are NULL where
-- pg_stat_activity hides them from it.
CREATE OR REPLACE FUNCTION pgstore.horizon_holder(
  OUT transaction_id bigint,
  OUT pid int,
  OUT database text,
  OUT role text,
  OUT prepared text,
  OUT age_seconds double precision,
  OUT state text,
  OUT application_name text,
  OUT query text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH h AS (
    SELECT pg_snapshot_xmin(s)::text::bigint AS xmin,
           pg_snapshot_xmax(s)::text::bigint AS xmax,
           (pg_snapshot_xmin(s)::text::bigint % 4294967296)::text::xid AS xid
      FROM pg_current_snapshot() AS s
  )
  SELECT h.xmin,
         l.pid,
         coalesce(a.datname::text, p.database::text),
         coalesce(a.usename::text, p.owner::text),
         p.gid,
         extract(epoch FROM now() - coalesce(a.xact_start, p.prepared))::double precision,
         CASE WHEN p.gid IS NOT NULL THEN 'prepared' ELSE a.state END,
         a.application_name,
         left(a.query, 200)
    FROM h
    LEFT JOIN pg_locks l
      ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
     AND l.transactionid = h.xid AND l.pid IS NOT NULL
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    LEFT JOIN pg_prepared_xacts p ON p.transaction = h.xid
   WHERE h.xmin < h.xmax
   LIMIT 1
$$;
