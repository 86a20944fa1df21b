-- Named queries of the Python API, loaded by pgstore/queries.py.
-- Each starts with a "-- name: <name>" line; parameters are psycopg named placeholders.

-- name: append_messages
SELECT id, position, global_position
  FROM pgstore.append_messages(
    %(stream_name)s, %(ids)s::uuid[], %(types)s::text[], %(data)s::jsonb[],
    %(metadata)s::jsonb[], %(expected_version)s)

-- name: read_stream
SELECT id, stream_name, type, position, global_position, data, metadata, time
  FROM pgstore.read_stream(%(stream_name)s, %(from_position)s, %(batch_size)s)

-- name: read_category
SELECT id, stream_name, type, position, global_position, data, metadata, time
  FROM pgstore.read_category(
    %(category)s, %(from_global_position)s, %(batch_size)s,
    %(consumer_group_member)s, %(consumer_group_size)s, %(correlation)s)

-- name: read_all
SELECT id, stream_name, type, position, global_position, data, metadata, time
  FROM pgstore.read_all(%(from_global_position)s, %(batch_size)s)

-- name: last_message
SELECT id, stream_name, type, position, global_position, data, metadata, time
  FROM pgstore.last_message(%(stream_name)s, %(type)s)

-- name: stream_version
SELECT pgstore.stream_version(%(stream_name)s)

-- name: aggregate_load
SELECT version, data FROM pgstore.aggregates WHERE category = %(category)s AND id = %(id)s

-- name: aggregate_find
SELECT version, data FROM pgstore.aggregates
 WHERE category = %(category)s AND data @> %(filter)s
 ORDER BY id LIMIT %(limit)s

-- name: aggregate_insert
INSERT INTO pgstore.aggregates (category, id, version, data)
VALUES (%(category)s, %(id)s, 0, %(data)s)
ON CONFLICT (category, id) DO NOTHING

-- name: aggregate_update
UPDATE pgstore.aggregates
   SET version = version + 1, data = %(data)s, updated_at = now()
 WHERE category = %(category)s AND id = %(id)s AND version = %(expected_version)s

-- name: position_register
INSERT INTO pgstore.handler_positions (handler, category)
VALUES (%(handler)s, %(category)s)
ON CONFLICT (handler) DO NOTHING

-- name: position_lock
SELECT position, category FROM pgstore.handler_positions
 WHERE handler = %(handler)s
   FOR UPDATE SKIP LOCKED

-- name: position_advance
UPDATE pgstore.handler_positions
   SET position = %(position)s, updated_at = now()
 WHERE handler = %(handler)s AND position < %(position)s

-- name: failure_record
INSERT INTO pgstore.handler_failures AS f (handler, message_id, attempts, last_error)
VALUES (%(handler)s, %(message_id)s, 1, %(error)s)
ON CONFLICT (handler, message_id) DO UPDATE
   SET attempts = f.attempts + 1, last_failed_at = now(), last_error = excluded.last_error
RETURNING attempts, first_failed_at, last_failed_at

-- name: failure_clear
DELETE FROM pgstore.handler_failures WHERE handler = %(handler)s AND message_id = %(message_id)s

-- name: dead_letter_insert
INSERT INTO pgstore.dead_letters (
    handler, message_id, global_position, stream_name, type, data, metadata,
    error, traceback, attempts, first_failed_at, last_failed_at)
VALUES (
    %(handler)s, %(message_id)s, %(global_position)s, %(stream_name)s, %(type)s, %(data)s,
    %(metadata)s, %(error)s, %(traceback)s, %(attempts)s, %(first_failed_at)s, %(last_failed_at)s)
ON CONFLICT (handler, message_id) DO UPDATE
   SET error = excluded.error, traceback = excluded.traceback,
       attempts = pgstore.dead_letters.attempts + excluded.attempts,
       last_failed_at = excluded.last_failed_at, dead_at = now(), replay_requested_at = NULL

-- name: dead_letter_list
-- A handler's dead letters, each led by the columns of its Message (the stream position
-- and time come from the stored message; a message gone from the store gives -1 and
-- the time it died).
SELECT d.message_id, d.stream_name, d.type, coalesce(m.position, -1), d.global_position,
       d.data, d.metadata, coalesce(m.time, d.dead_at),
       d.error, d.traceback, d.attempts, d.first_failed_at, d.last_failed_at,
       d.replay_requested_at IS NOT NULL
  FROM pgstore.dead_letters d
  LEFT JOIN pgstore.messages m
    ON m.category = split_part(d.stream_name, '-', 1) AND m.global_position = d.global_position
 WHERE d.handler = %(handler)s
 ORDER BY d.global_position

-- name: dead_letter_replays
-- The Message columns of dead_letter_list, for the letters whose replay was asked for.
SELECT d.message_id, d.stream_name, d.type, coalesce(m.position, -1), d.global_position,
       d.data, d.metadata, coalesce(m.time, d.dead_at)
  FROM pgstore.dead_letters d
  LEFT JOIN pgstore.messages m
    ON m.category = split_part(d.stream_name, '-', 1) AND m.global_position = d.global_position
 WHERE d.handler = %(handler)s AND d.replay_requested_at IS NOT NULL
 ORDER BY d.global_position
   FOR UPDATE OF d SKIP LOCKED

-- name: dead_letter_delete
DELETE FROM pgstore.dead_letters WHERE handler = %(handler)s AND message_id = %(message_id)s

-- name: queue_create
SELECT queue, dead_letter_queue FROM pgstore.create_queue(%(handler)s, %(category)s)

-- name: queue_table
-- The queue's table, if pgstore may read it (else NULL): see sql/pgstore/queue_table.sql.
SELECT pgstore.queue_table(%(queue)s)::text

-- name: query_login_privileges
-- What this session's login could do beyond pgstore_reader: role attributes, other
-- roles it belongs to (directly or not), schemas it owns. pgstore query runs only
-- when all three are empty.
SELECT r.rolname,
       array_remove(ARRAY[
         CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
         CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
         CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
         CASE WHEN r.rolreplication THEN 'REPLICATION' END,
         CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL),
       ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_roles g
              WHERE g.oid <> r.oid AND g.rolname <> 'pgstore_reader'
                AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')
              ORDER BY 1),
       ARRAY(SELECT n.nspname::text FROM pg_catalog.pg_namespace n
              WHERE n.nspowner = r.oid ORDER BY 1)
  FROM pg_catalog.pg_roles r
 WHERE r.rolname = session_user

-- name: query_login_exists
SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgstore_query'),
       EXISTS (SELECT FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r
                 ON r.rolname = 'pgstore_reader'
                WHERE n.nspname = 'pgstore'
                  AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE'))

-- name: server_time_in
SELECT (now() + make_interval(secs => %(seconds)s))::text

-- name: roles_in_use
-- Whether pgstore's roles are set up in this database, and Message DB's login exists.
SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r
                 ON r.rolname = 'pgstore_reader'
                WHERE n.nspname = 'pgstore'
                  AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE')),
       EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'message_store')

-- name: handler_find
-- A started handler by full name (`domain.Handler`) or by class name (the part after
-- the last '.'); plain comparisons, so any character in the name is literal.
SELECT p.handler, p.category, p.position, s.queue, s.dead_letter_queue
  FROM pgstore.handler_positions p
  LEFT JOIN pgstore.stream_subscriptions s ON s.handler = p.handler
 WHERE p.handler = %(name)s
    OR (strpos(%(name)s, '.') = 0 AND right(p.handler, length(%(name)s) + 1) = '.' || %(name)s)
 ORDER BY p.handler
