-- The oldest running transaction that holds a transaction id, i.e. the one that
-- holds the global position horizon (and every subscriber) back while it stays open.
CREATE OR REPLACE FUNCTION pgstore.oldest_transaction(
  OUT pid int,
  OUT age_seconds double precision,
  OUT state text,
  OUT application_name text,
  OUT query text
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT a.pid,
         extract(epoch FROM now() - a.xact_start)::double precision,
         a.state,
         a.application_name,
         left(a.query, 200)
    FROM pg_stat_activity a
   WHERE a.backend_xid IS NOT NULL
   ORDER BY age(a.backend_xid) DESC
   LIMIT 1
$$;
