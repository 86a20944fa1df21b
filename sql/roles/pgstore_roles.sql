-- Least-privilege roles (NOLOGIN groups: grant them to your login roles).
--   pgstore_reader      reads the store and the views; runs `pgstore query`
--   pgstore_writer      appends (through the functions only) and saves aggregates
--   pgstore_dispatcher  runs handlers: the writer's rights, plus positions, retries,
--                       dead letters and the handlers' pgmq queues
-- Nobody but the owner writes the message tables directly: appends go through
-- SECURITY DEFINER functions with a fixed search_path.
DO $$
DECLARE
  _role text;
BEGIN
  FOREACH _role IN ARRAY ARRAY['pgstore_reader', 'pgstore_writer', 'pgstore_dispatcher'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = _role) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', _role);
    END IF;
  END LOOP;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA pgstore FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgstore, message_store FROM PUBLIC;

GRANT USAGE ON SCHEMA pgstore, message_store TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT SELECT ON ALL TABLES IN SCHEMA pgstore TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT SELECT ON ALL TABLES IN SCHEMA message_store TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgstore, message_store
  TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
-- The readers' EXECUTE is harmless on the writing functions only because they are
-- taken back here: a reader can call every read function and nothing that writes.
REVOKE EXECUTE ON FUNCTION
  pgstore.append_messages(text, uuid[], text[], jsonb[], jsonb[], bigint),
  message_store.write_message(varchar, varchar, varchar, jsonb, jsonb, bigint)
  FROM pgstore_reader;
-- pgstore.status and the views call pgmq's metrics.
GRANT USAGE ON SCHEMA pgmq TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pgstore_reader;

-- State-stored aggregates are the application's own rows.
GRANT INSERT, UPDATE ON pgstore.aggregates TO pgstore_writer, pgstore_dispatcher;

-- The dispatcher's bookkeeping.
GRANT INSERT, UPDATE ON pgstore.handler_positions TO pgstore_dispatcher;
GRANT INSERT, UPDATE, DELETE ON pgstore.handler_failures, pgstore.dead_letters TO pgstore_dispatcher;
GRANT INSERT, UPDATE ON pgstore.stream_subscriptions TO pgstore_dispatcher;
GRANT CREATE ON SCHEMA pgmq TO pgstore_dispatcher;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgmq TO pgstore_dispatcher;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgmq TO pgstore_dispatcher;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pgstore_dispatcher;
