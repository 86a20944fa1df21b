-- The login role Message DB clients connect as. Its name matches the schema, so
-- PostgreSQL's default search_path ("$user", public) finds the message_store
-- functions unqualified, as Message DB clients call them.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'message_store') THEN
    CREATE ROLE message_store LOGIN;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA message_store, pgstore TO message_store;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA message_store, pgstore TO message_store;
GRANT SELECT ON message_store.messages TO message_store;
-- Reads run as the caller; appends run as pgstore's owner (SECURITY DEFINER).
GRANT SELECT ON pgstore.messages, pgstore.message_ids, pgstore.stream_heads TO message_store;
