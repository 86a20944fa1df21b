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
-- Message DB's API, and the pgstore functions it calls (an allowlist: nothing that
-- creates queues or claims positions on its own).
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA message_store TO message_store;
GRANT EXECUTE ON FUNCTION
  pgstore.append_messages, pgstore.cardinal_id, pgstore.category, pgstore.check_batch,
  pgstore.check_batch_size, pgstore.check_consumer_group, pgstore.check_name,
  pgstore.check_payload, pgstore.find_appended, pgstore.global_position_horizon,
  pgstore.hash_64, pgstore.id, pgstore.is_category, pgstore.last_message,
  pgstore.read_all, pgstore.read_category, pgstore.read_stream, pgstore.stream_version,
  pgstore.xid_offset
  TO message_store;
GRANT SELECT ON message_store.messages TO message_store;
-- Reads run as the caller; appends run as pgstore's owner (SECURITY DEFINER).
GRANT SELECT ON pgstore.messages, pgstore.message_ids, pgstore.stream_heads TO message_store;
