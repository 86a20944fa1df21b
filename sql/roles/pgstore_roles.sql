-- Least-privilege roles (NOLOGIN groups: grant them to your login roles), and the
-- login `pgstore query` runs as. Roles belong to the cluster; what each may do in a
-- database is in pgstore_grants.sql, applied right after this file.
--   pgstore_reader      reads the store and the views; runs `pgstore query`
--   pgstore_writer      appends (through the functions only) and saves aggregates
--   pgstore_dispatcher  runs handlers: the writer's rights, plus positions, retries,
--                       dead letters and the handlers' pgmq queues
--   pgstore_query       a login holding pgstore_reader and nothing else
DO $$
DECLARE
  _role text;
BEGIN
  FOREACH _role IN ARRAY ARRAY['pgstore_reader', 'pgstore_writer', 'pgstore_dispatcher'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = _role) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', _role);
    END IF;
  END LOOP;
  -- pgstore query logs in as this role with a one-minute password it sets each time.
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgstore_query') THEN
    CREATE ROLE pgstore_query LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
      NOBYPASSRLS CONNECTION LIMIT 32;
  END IF;
END
$$;
GRANT pgstore_reader TO pgstore_query;
ALTER ROLE pgstore_query SET default_transaction_read_only = on;
ALTER ROLE pgstore_query SET statement_timeout = '1min';
ALTER ROLE pgstore_query SET idle_in_transaction_session_timeout = '1min';
