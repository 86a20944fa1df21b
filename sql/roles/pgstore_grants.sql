-- What pgstore's roles may do in this database: allowlists, re-applied by every
-- `pgstore migrate` once the roles exist (so a function added by an upgrade is
-- granted, or not, on purpose). Nobody but the owner writes the message tables
-- directly: appends go through SECURITY DEFINER functions with a fixed search_path.

-- Start from nothing: what PUBLIC and the roles had before (including grants of older
-- pgstore versions) is taken back, then granted again below.
REVOKE ALL ON ALL TABLES IN SCHEMA pgstore, message_store
  FROM PUBLIC, pgstore_reader, pgstore_writer, pgstore_dispatcher;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgstore, message_store
  FROM PUBLIC, pgstore_reader, pgstore_writer, pgstore_dispatcher;
-- Functions that a later upgrade adds start unexecutable by PUBLIC too.
ALTER DEFAULT PRIVILEGES IN SCHEMA pgstore, message_store REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA pgstore, message_store TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT SELECT ON ALL TABLES IN SCHEMA pgstore, message_store
  TO pgstore_reader, pgstore_writer, pgstore_dispatcher;

-- Reading: every role.
GRANT EXECUTE ON FUNCTION
  pgstore.cardinal_id, pgstore.category, pgstore.check_batch, pgstore.check_batch_size,
  pgstore.feed_batch,
  pgstore.check_consumer_group, pgstore.check_name, pgstore.check_payload,
  pgstore.check_row_size, pgstore.find_appended, pgstore.from_source,
  pgstore.global_position_horizon,
  pgstore.hash_64, pgstore.id, pgstore.is_category, pgstore.last_message,
  pgstore.oldest_transaction, pgstore.horizon_holder, pgstore.dead_letter_summary,
  pgstore.queue_depth, pgstore.queue_names,
  pgstore.queue_table, pgstore.read_all, pgstore.read_category, pgstore.read_stream,
  pgstore.stream_version, pgstore.xid_offset,
  message_store.cardinal_id, message_store.category, message_store.get_category_messages,
  message_store.get_last_stream_message, message_store.get_stream_messages,
  message_store.hash_64, message_store.id, message_store.is_category,
  message_store.message_store_version, message_store.raise_as_message_db,
  message_store.refuse_condition, message_store.stream_version
  TO pgstore_reader, pgstore_writer, pgstore_dispatcher;

-- Appending: writers and dispatchers, through the functions only.
GRANT EXECUTE ON FUNCTION pgstore.append_messages, message_store.write_message
  TO pgstore_writer, pgstore_dispatcher;
-- State-stored aggregates are the application's own rows, and so are the results of
-- commands run with an idempotency key.
GRANT INSERT, UPDATE ON pgstore.aggregates, pgstore.command_results
  TO pgstore_writer, pgstore_dispatcher;

-- The dispatcher's bookkeeping. Queues are created (and subscriptions registered)
-- only through pgstore.create_queue, which runs as the owner: the dispatcher may not
-- create anything in a schema that other roles read.
GRANT EXECUTE ON FUNCTION
  pgstore.create_queue, pgstore.feed_queue, pgstore.fill_queue, pgstore.read_queue,
  pgstore.release_dead_claims
  TO pgstore_dispatcher;
GRANT INSERT, UPDATE ON pgstore.handler_positions TO pgstore_dispatcher;
GRANT INSERT, UPDATE, DELETE ON pgstore.handler_partitions TO pgstore_dispatcher;
GRANT INSERT, UPDATE, DELETE
  ON pgstore.handler_failures, pgstore.dead_letters, pgstore.handler_parked, pgstore.queue_claims
  TO pgstore_dispatcher;

-- pgmq: the status views count queue rows; the dispatcher sends, reads and deletes
-- through pgmq's functions, on the queue tables only (not pgmq's own catalog).
REVOKE CREATE ON SCHEMA pgmq FROM PUBLIC, pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT USAGE ON SCHEMA pgmq TO pgstore_reader, pgstore_writer, pgstore_dispatcher;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pgstore_reader, pgstore_dispatcher;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgmq TO pgstore_dispatcher;
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgmq TO pgstore_dispatcher;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pgmq.meta FROM pgstore_dispatcher;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pgstore_dispatcher;
-- Queues created later by this role (pgstore.create_queue's owner) get the same.
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON TABLES TO pgstore_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pgstore_dispatcher;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT USAGE, SELECT ON SEQUENCES TO pgstore_dispatcher;
