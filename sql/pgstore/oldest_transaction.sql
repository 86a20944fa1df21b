-- The oldest running transaction that holds a transaction id, i.e. the one that
-- holds the global position horizon (and every subscriber) back while it stays open.
-- Kept for callers of earlier versions; pgstore.horizon_holder() says more (the
-- database, the role, a prepared transaction) and sees past pg_stat_activity's limits.
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
  SELECT h.pid, h.age_seconds, h.state, h.application_name, h.query
    FROM pgstore.horizon_holder() h
$$;
