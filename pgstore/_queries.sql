-- Every statement the package runs, named, in one place to review against the role
-- grants (sql/roles/pgstore_grants.sql); loaded by pgstore/_queries.py. Each starts
-- with a "-- name: <name>" line; parameters are psycopg named placeholders; {table}
-- is a queue table, composed with psycopg.sql.Identifier after pgstore.queue_table()
-- or from the worker's own queue name. The few statements composed elsewhere say why
-- where they are (a migration file's text, pgstore query's wrapper around the user's
-- checked query, ALTER ROLE with a password hash, LISTEN on a constant channel).

-- name: append_messages
SELECT id, position, global_position
  FROM pgstore.append_messages(
    %(stream_name)s, %(ids)b::uuid[], %(types)b::text[], %(data)b::jsonb[],
    %(metadata)b::jsonb[], %(expected_version)s)

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
-- A state-stored aggregate of this domain (or, from before domains kept their own
-- rows, of none): the domain's own row first.
SELECT version, data, domain FROM pgstore.aggregates
 WHERE domain IN (%(domain)s, '') AND category = %(category)s AND id = %(id)s
 ORDER BY domain DESC
 LIMIT 1

-- name: aggregate_find
SELECT id, version, data, domain FROM pgstore.aggregates
 WHERE domain IN (%(domain)s, '') AND category = %(category)s AND data @> %(filter)s
 ORDER BY id LIMIT %(limit)s

-- name: aggregate_insert
INSERT INTO pgstore.aggregates (domain, category, id, version, data)
VALUES (%(domain)s, %(category)s, %(id)s, 0, %(data)s)
ON CONFLICT (domain, category, id) DO NOTHING

-- name: aggregate_update
UPDATE pgstore.aggregates
   SET version = version + 1, data = %(data)s, updated_at = now()
 WHERE domain = %(row_domain)s AND category = %(category)s AND id = %(id)s
   AND version = %(expected_version)s

-- name: aggregate_insert_at
-- A new aggregate saved (perhaps more than once) in a dispatch batch: see deferred.py.
INSERT INTO pgstore.aggregates (domain, category, id, version, data)
VALUES (%(domain)s, %(category)s, %(id)s, %(version)s, %(data)s)
ON CONFLICT (domain, category, id) DO NOTHING

-- name: aggregate_update_to
-- An aggregate's saves in a dispatch batch, as one: the row must still be at the
-- version the batch read.
UPDATE pgstore.aggregates
   SET version = %(version)s, data = %(data)s, updated_at = now()
 WHERE domain = %(row_domain)s AND category = %(category)s AND id = %(id)s
   AND version = %(expected_version)s

-- name: position_register
INSERT INTO pgstore.handler_positions (handler, category)
VALUES (%(handler)s, %(category)s)
ON CONFLICT (handler) DO NOTHING

-- name: position_lock
-- A handler whose category is not split into partitions (partitioned ones are locked
-- a partition at a time: partition_lock).
SELECT position, category FROM pgstore.handler_positions p
 WHERE handler = %(handler)s
   AND NOT EXISTS (SELECT FROM pgstore.handler_partitions hp WHERE hp.handler = p.handler)
   FOR UPDATE SKIP LOCKED

-- name: partitions_of
-- How many partitions a handler's category is split into (no row: not split).
SELECT partitions FROM pgstore.handler_partitions WHERE handler = %(handler)s LIMIT 1

-- name: partition_lock
-- The partition this worker runs next: the one served longest ago that no other
-- worker holds and this pass has not run yet. Its row stays locked for the batch.
SELECT partition, partitions, position FROM pgstore.handler_partitions
 WHERE handler = %(handler)s AND NOT (partition = ANY (%(done)s::int[]))
 ORDER BY updated_at, partition
 LIMIT 1
   FOR UPDATE SKIP LOCKED

-- name: partition_advance
UPDATE pgstore.handler_partitions
   SET position = %(position)s, updated_at = now()
 WHERE handler = %(handler)s AND partition = %(partition)s AND position < %(position)s

-- name: partition_touch
-- A partition that had nothing new goes to the back of the line.
UPDATE pgstore.handler_partitions SET updated_at = now()
 WHERE handler = %(handler)s AND partition = %(partition)s

-- name: partitions_lock_all
-- Reshaping: wait for every batch in progress, and hold them off.
SELECT position, category FROM pgstore.handler_positions
 WHERE handler = %(handler)s
   FOR UPDATE

-- name: partitions_count
-- How many partitions a handler has. Asked only once partitions_lock_all holds the
-- lock: a statement that waited for it sees other tables as they were before it
-- waited, so it would miss a split another worker made meanwhile.
SELECT count(*) FROM pgstore.handler_partitions WHERE handler = %(handler)s

-- name: partitions_lock_rows
SELECT 1 FROM pgstore.handler_partitions WHERE handler = %(handler)s FOR UPDATE

-- name: partitions_caught_up
-- The horizon, if every partition has handled its whole share below it (else NULL):
-- the one position every partition of a new split can start from.
SELECT CASE WHEN NOT EXISTS (
         SELECT FROM pgstore.handler_partitions hp
           JOIN pgstore.messages m
             ON m.category = %(category)s
            AND m.global_position >= hp.position
            AND m.global_position < hz.position
            AND abs(mod(m.consumer_hash, hp.partitions)) = hp.partition
          WHERE hp.handler = %(handler)s)
       THEN hz.position END
  FROM (SELECT pgstore.global_position_horizon() AS position) hz

-- name: partitions_create
-- Split a handler's category into partitions, each starting at `position`.
INSERT INTO pgstore.handler_partitions (handler, partition, partitions, position)
SELECT %(handler)s, n, %(partitions)s, %(position)s
  FROM generate_series(0, %(partitions)s - 1) AS n

-- name: partitions_delete
DELETE FROM pgstore.handler_partitions WHERE handler = %(handler)s

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
-- Data and metadata come as JSON text: a message Python could not decode is kept as
-- stored.
INSERT INTO pgstore.dead_letters (
    handler, message_id, global_position, stream_name, type, data, metadata,
    error, traceback, attempts, first_failed_at, last_failed_at)
VALUES (
    %(handler)s, %(message_id)s, %(global_position)s, %(stream_name)s, %(type)s,
    %(data)s::jsonb, %(metadata)s::jsonb, %(error)s, %(traceback)s, %(attempts)s,
    %(first_failed_at)s, %(last_failed_at)s)
ON CONFLICT (handler, message_id) DO UPDATE
   SET error = excluded.error, traceback = excluded.traceback,
       attempts = pgstore.dead_letters.attempts + excluded.attempts,
       last_failed_at = excluded.last_failed_at, dead_at = now(), replay_requested_at = NULL

-- name: dead_letter_list
-- A handler's dead letters, each led by its message's encoded columns (data and
-- metadata as JSON text; the stream position and time come from the stored message,
-- -1 and the time it died for a message gone from the store).
SELECT d.message_id, d.stream_name, d.type, coalesce(m.position, -1), d.global_position,
       d.data::text, d.metadata::text, coalesce(m.time, d.dead_at),
       d.error, d.traceback, d.attempts, d.first_failed_at, d.last_failed_at,
       d.replay_requested_at IS NOT NULL
  FROM pgstore.dead_letters d
  LEFT JOIN pgstore.messages m
    ON m.category = split_part(d.stream_name, '-', 1) AND m.global_position = d.global_position
 WHERE d.handler = %(handler)s
 ORDER BY d.global_position

-- name: dead_letter_replays
-- The encoded message columns of dead_letter_list, for the letters whose replay was
-- asked for.
SELECT d.message_id, d.stream_name, d.type, coalesce(m.position, -1), d.global_position,
       d.data::text, d.metadata::text, coalesce(m.time, d.dead_at)
  FROM pgstore.dead_letters d
  LEFT JOIN pgstore.messages m
    ON m.category = split_part(d.stream_name, '-', 1) AND m.global_position = d.global_position
 WHERE d.handler = %(handler)s AND d.replay_requested_at IS NOT NULL
   AND (%(partitions)s::int IS NULL
        OR abs(mod(pgstore.hash_64(pgstore.cardinal_id(d.stream_name)), %(partitions)s))
           = %(partition)s)
 ORDER BY d.global_position
   FOR UPDATE OF d SKIP LOCKED

-- name: dead_letter_request_replay
UPDATE pgstore.dead_letters SET replay_requested_at = now()
 WHERE handler = %(handler)s AND (%(ids)s::uuid[] IS NULL OR message_id = ANY (%(ids)s::uuid[]))

-- name: dead_letter_purge
DELETE FROM pgstore.dead_letters
 WHERE handler = %(handler)s AND (%(ids)s::uuid[] IS NULL OR message_id = ANY (%(ids)s::uuid[]))

-- name: queue_dead_letter_send
-- A stream handler's dead letter: the letter's body, with the message's data and
-- metadata set in from JSON text (kept as stored when Python could not decode them).
SELECT pgmq.send(
    %(queue)s,
    jsonb_set(
      jsonb_set(%(body)s::jsonb, '{message,data}', coalesce(%(data)s::jsonb, 'null')),
      '{message,metadata}', coalesce(%(metadata)s::jsonb, 'null')),
    jsonb_build_object('x-pgmq-group', %(group)s::text))

-- name: queue_dead_letter_rows
-- A dead-letter queue's letters: the queue row id, the message's encoded columns, then
-- the letter's error, traceback, attempts and failure times ({table}: the queue table,
-- checked with pgstore.queue_table first).
SELECT msg_id,
       message->'message'->>'id', message->'message'->>'stream_name',
       message->'message'->>'type', message->'message'->>'position',
       message->'message'->>'global_position', (message->'message'->'data')::text,
       (message->'message'->'metadata')::text, message->'message'->>'time',
       message->>'error', message->>'traceback', message->>'attempts',
       message->>'first_failed_at', message->>'last_failed_at'
  FROM {table}
 ORDER BY msg_id

-- name: queue_dead_letter_replay
-- Moves dead letters (all, or those whose message id is in ids) back into the
-- handler's queue, in their order, as stored; returns how many.
WITH chosen AS MATERIALIZED (
  SELECT msg_id, message->'message' AS body
    FROM {table}
   WHERE %(ids)s::text[] IS NULL OR message->'message'->>'id' = ANY (%(ids)s::text[])
     FOR UPDATE),
sent AS MATERIALIZED (
  SELECT pgmq.send_batch(
           %(queue)s,
           array_agg(body ORDER BY msg_id),
           array_agg(jsonb_build_object('x-pgmq-group', body->>'stream_name') ORDER BY msg_id))
    FROM chosen
  HAVING count(*) > 0),
deleted AS MATERIALIZED (
  SELECT pgmq.delete(%(dead_letter_queue)s, array_agg(msg_id)) FROM chosen HAVING count(*) > 0)
SELECT (SELECT count(*) FROM sent) + 0 * (SELECT count(*) FROM deleted)

-- name: queue_dead_letter_purge
WITH chosen AS MATERIALIZED (
  SELECT msg_id
    FROM {table}
   WHERE %(ids)s::text[] IS NULL OR message->'message'->>'id' = ANY (%(ids)s::text[])
     FOR UPDATE),
deleted AS MATERIALIZED (
  SELECT pgmq.delete(%(dead_letter_queue)s, array_agg(msg_id)) FROM chosen HAVING count(*) > 0)
SELECT count(*) FROM deleted

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

-- name: failure_ids
SELECT message_id FROM pgstore.handler_failures WHERE handler = %(handler)s

-- name: conflicts_add
UPDATE pgstore.handler_positions SET conflicts = conflicts + %(count)s WHERE handler = %(handler)s

-- name: read_category_encoded
-- The gap-safe category read, with data and metadata as JSON text: the dispatcher
-- decodes each message on its own, so one it cannot read stops nothing else. One
-- partition's share (a consumer group member), or all of it (NULL).
SELECT id, stream_name, type, position, global_position, data::text, metadata::text, time
  FROM pgstore.read_category(%(category)s, %(from_global_position)s, %(batch_size)s,
                             %(partition)s, %(partitions)s)

-- name: handler_side_work
-- Whether an event_store handler has dead letters to replay, streams held back, and
-- its category split into partitions (asked again once the position is locked: see
-- EventStoreSubscription._batch).
SELECT EXISTS (SELECT FROM pgstore.dead_letters d
                WHERE d.handler = %(handler)s AND d.replay_requested_at IS NOT NULL),
       EXISTS (SELECT FROM pgstore.handler_parked p WHERE p.handler = %(handler)s),
       EXISTS (SELECT FROM pgstore.handler_partitions hp WHERE hp.handler = %(handler)s)

-- name: parked_streams
-- The streams an event_store handler holds back, each with the seconds until its
-- failed message is due to be tried again (0 or less: due now); of one partition
-- (partition of partitions) or of all (NULL).
SELECT stream_name, coalesce(extract(epoch FROM min(retry_at) - now()), 0)::float8
  FROM pgstore.handler_parked
 WHERE handler = %(handler)s
   AND (%(partitions)s::int IS NULL
        OR abs(mod(pgstore.hash_64(pgstore.cardinal_id(stream_name)), %(partitions)s))
           = %(partition)s)
 GROUP BY stream_name
 ORDER BY min(global_position)

-- name: parked_messages
-- The parked messages of the given streams, in order, as encoded columns.
SELECT m.id, m.stream_name, m.type, m.position, m.global_position, m.data::text,
       m.metadata::text, m.time
  FROM pgstore.handler_parked p
  JOIN pgstore.messages m ON m.category = p.category AND m.global_position = p.global_position
 WHERE p.handler = %(handler)s AND p.stream_name = ANY (%(streams)s::text[])
 ORDER BY p.global_position
 LIMIT %(limit)s

-- name: park
-- Sets a message aside: retry_after seconds from now for a failed one, NULL for one
-- that waits behind its stream's failed message.
INSERT INTO pgstore.handler_parked (handler, global_position, stream_name, category, retry_at)
VALUES (%(handler)s, %(global_position)s, %(stream_name)s, %(category)s,
        now() + make_interval(secs => %(retry_after)s::float8))
ON CONFLICT ON CONSTRAINT handler_parked_pkey DO UPDATE SET retry_at = excluded.retry_at

-- name: unpark
DELETE FROM pgstore.handler_parked
 WHERE handler = %(handler)s AND global_position = %(global_position)s

-- name: parked_count
SELECT count(*) FROM pgstore.handler_parked WHERE handler = %(handler)s

-- name: queue_read
-- A stream handler's next batch, FIFO per stream (see read_queue.sql), as encoded
-- message columns after the queue row id and read count; the same statement records
-- the claim under the worker's session token (see release_dead_claims.sql).
WITH r AS MATERIALIZED (
  SELECT msg_id, read_ct, message
    FROM pgstore.read_queue(%(queue)s, %(visibility_timeout)s, %(limit)s)),
claim AS (
  INSERT INTO pgstore.queue_claims AS c (queue, token, msg_ids)
  SELECT %(queue)s, %(token)s, array_agg(msg_id) FROM r HAVING count(*) > 0
  ON CONFLICT ON CONSTRAINT queue_claims_pkey
  DO UPDATE SET msg_ids = excluded.msg_ids, claimed_at = now())
SELECT msg_id, read_ct,
       message->>'id', message->>'stream_name', message->>'type', message->>'position',
       message->>'global_position', (message->'data')::text, (message->'metadata')::text,
       message->>'time'
  FROM r
 ORDER BY msg_id

-- name: queue_release
-- Makes a queue message visible again after `delay` seconds (0: at once).
SELECT pgmq.set_vt(%(queue)s, %(msg_id)s::bigint, %(delay)s::int)

-- name: queue_settle
-- Deletes the queue messages a batch dealt with, and the worker's claim on it.
WITH unclaimed AS (
  DELETE FROM pgstore.queue_claims WHERE queue = %(queue)s AND token = %(token)s)
SELECT count(*) FROM pgmq.delete(%(queue)s, %(done)s::bigint[])

-- name: queue_pending
-- How many messages a worker's own queue holds (waiting, in flight or due for a
-- retry), and the seconds until the next invisible one becomes visible.
SELECT count(*), coalesce(extract(epoch FROM min(vt) - now()), 0)::float8 FROM {table}

-- name: queue_release_dead_claims
SELECT pgstore.release_dead_claims(%(queue)s)

-- name: status_handlers
SELECT handler, subscription_type, category, position, lag_events, lag_seconds,
       queue_depth, dead_letters, last_error, last_failed_at, waiting_events,
       waiting_seconds, conflicts, failing, partitions
  FROM pgstore.handlers
 ORDER BY handler

-- name: status_category_backlog
-- A handler that has not run yet: the whole category below the horizon is its lag.
SELECT count(*), extract(epoch FROM now() - min(time))
  FROM pgstore.messages
 WHERE category = %(category)s AND global_position < pgstore.global_position_horizon()

-- name: status_horizon
-- The horizon, how many committed events wait above it and since when, and the
-- transaction that holds it (see sql/pgstore/horizon_holder.sql).
SELECT hz.position, waiting.events,
       coalesce(extract(epoch FROM now() - waiting.oldest), 0)::float8,
       h.transaction_id, h.pid, h.database, h.role, h.prepared, h.age_seconds, h.state,
       h.application_name, h.query
  FROM (SELECT pgstore.global_position_horizon() AS position) hz
 CROSS JOIN LATERAL (
   SELECT count(*) AS events, min(m.time) AS oldest
     FROM pgstore.messages m
    WHERE m.global_position >= hz.position) waiting
  LEFT JOIN pgstore.horizon_holder() h ON true

-- name: handler_names
SELECT handler FROM pgstore.handler_positions

-- name: position_lock_wait
-- An operator's change to a handler: waits for the batch in progress, if any.
SELECT 1 FROM pgstore.handler_positions WHERE handler = %(handler)s FOR UPDATE

-- name: position_at_time
-- The first global position at or after a time in a category (the horizon if none).
SELECT coalesce(min(global_position), pgstore.global_position_horizon())
  FROM pgstore.messages
 WHERE category = %(category)s AND time >= %(since)s

-- name: position_set
-- A handler's position, and every partition's if its category is split.
WITH partitions AS (
  UPDATE pgstore.handler_partitions SET position = %(position)s, updated_at = now()
   WHERE handler = %(handler)s)
UPDATE pgstore.handler_positions SET position = %(position)s, updated_at = now()
 WHERE handler = %(handler)s

-- name: parked_forget
DELETE FROM pgstore.handler_parked WHERE handler = %(handler)s

-- name: queue_purge
SELECT pgmq.purge_queue(%(queue)s)

-- name: queue_drop
SELECT pgmq.drop_queue(%(queue)s)

-- name: stream_subscription_delete
DELETE FROM pgstore.stream_subscriptions WHERE handler = %(handler)s
RETURNING queue, dead_letter_queue

-- name: handler_forget
-- A dropped stream handler: its position, failure counts and parked messages.
WITH positions AS (DELETE FROM pgstore.handler_positions WHERE handler = %(handler)s),
     parked AS (DELETE FROM pgstore.handler_parked WHERE handler = %(handler)s)
DELETE FROM pgstore.handler_failures WHERE handler = %(handler)s

-- name: stream_subscriptions_list
SELECT s.handler, s.category, s.queue, s.dead_letter_queue, q.depth, d.depth
  FROM pgstore.stream_subscriptions s
 CROSS JOIN LATERAL pgstore.queue_depth(s.queue) q
 CROSS JOIN LATERAL pgstore.queue_depth(s.dead_letter_queue) d
 ORDER BY s.handler

-- name: stream_subscriptions_of
SELECT handler, queue FROM pgstore.stream_subscriptions
 WHERE left(handler, length(%(domain)s) + 1) = %(domain)s || '.'

-- name: handler_lag
SELECT lag_events FROM pgstore.handlers WHERE handler = %(handler)s

-- name: queue_lock
-- A batch's queue rows, locked for the handler transaction, with their read counts
-- ({table}: the worker's own queue table).
SELECT msg_id, read_ct FROM {table} WHERE msg_id = ANY (%(ids)s) ORDER BY msg_id FOR UPDATE

-- name: queue_vacuum
VACUUM {table}

-- name: queue_feed
-- The feeder: see sql/pgstore/fill_queue.sql.
SELECT pgstore.fill_queue(
    %(handler)s, %(queue)s, %(category)s, %(queue_limit)s, %(types)s, %(source_stream)s)

-- name: queue_feed_lock
-- The feeder reading on a standby, first step on the primary: its position (locked
-- for the transaction; no row if another feeder holds it) and the queue's room.
SELECT p.position, %(queue_limit)s - (pgstore.queue_depth(%(queue)s)).depth
  FROM pgstore.handler_positions p
 WHERE p.handler = %(handler)s
   FOR UPDATE SKIP LOCKED

-- name: queue_feed_read
-- ...its read, on the standby (see sql/pgstore/feed_batch.sql); the bodies as JSON
-- text, so they travel to the primary byte for byte.
SELECT passed, last, messages::text[], groups::text[]
  FROM pgstore.feed_batch(%(category)s, %(from_global_position)s, %(room)s,
                          %(types)s, %(source_stream)s)

-- name: queue_send_batch
-- ...and what it read, sent on the primary.
SELECT pgmq.send_batch(%(queue)s, %(messages)s::text[]::jsonb[], %(groups)s::text[]::jsonb[])

-- name: session_set
SELECT set_config(%(name)s, %(value)s, false)

-- name: session_claim_lock
-- Held for the session's life: marks this worker as alive (see release_dead_claims.sql).
SELECT pg_advisory_lock(%(key)s, %(token)s)

-- name: migrate_lock
-- `pgstore migrate` runs one at a time (pgstore's advisory lock space: 'pgs', 'migr').
SELECT pg_advisory_lock(%s, %s)

-- name: migrate_unlock
SELECT pg_advisory_unlock(%s, %s)

-- name: migrations_table
CREATE SCHEMA IF NOT EXISTS pgstore;
CREATE TABLE IF NOT EXISTS pgstore.schema_migrations (
    version int PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: functions_missing
-- Which of these functions (`schema.name`) the database does not have.
SELECT f FROM unnest(%(functions)s::text[]) AS f
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_proc p
                     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = split_part(f, '.', 1)
                      AND p.proname = split_part(f, '.', 2))
 ORDER BY f

-- name: migrations_table_exists
SELECT to_regclass('pgstore.schema_migrations') IS NOT NULL

-- name: migrations_applied
SELECT version, checksum, applied_at FROM pgstore.schema_migrations

-- name: migration_record
INSERT INTO pgstore.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s)

-- name: store_exists
-- Whether this database has pgstore's tables (from migrations applied before
-- migrations were recorded, or by hand): then it is never treated as fresh.
SELECT to_regclass('pgstore.messages') IS NOT NULL

-- name: function_bodies_unchecked
-- Function bodies may name functions defined in later files.
SET LOCAL check_function_bodies = off

-- name: pgmq_exists
SELECT to_regclass('pgmq.meta') IS NOT NULL

-- name: rebase_needed
-- Whether a stored global position is at or above the cluster's next transaction id
-- (only a logical copy from another cluster can cause that).
SELECT (SELECT max(global_position) >> 16 FROM pgstore.messages)
       >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint + pgstore.xid_offset()

-- name: rebase_lock
-- No append may run while the offset changes: it would take a position from the old one.
LOCK TABLE pgstore.message_ids IN SHARE ROW EXCLUSIVE MODE

-- name: rebase_positions
SELECT coalesce(max(global_position) >> 16, 0), pg_current_xact_id()::text::bigint,
       pgstore.xid_offset()
  FROM pgstore.messages

-- name: rebase_offset
-- {offset}: the new offset, a literal.
CREATE OR REPLACE FUNCTION pgstore.xid_offset() RETURNS bigint LANGUAGE sql
IMMUTABLE PARALLEL SAFE AS $$ SELECT {offset}::bigint $$

-- name: sandbox_read_only
SET TRANSACTION READ ONLY

-- name: observatory_session
-- The observatory's reader sessions: no page waits on a slow query for long.
SELECT set_config('statement_timeout', %(timeout)s, false)

-- name: sandbox_settings
-- pgstore query's transaction: its statement timeout, and only pg_catalog on the path.
SELECT set_config('statement_timeout', %(timeout)s, true),
       set_config('search_path', 'pg_catalog, pg_temp', true)

-- name: query_login_lock
-- Concurrent `pgstore query` runs take turns setting the query login's password
-- (pgstore's advisory lock space: 'pgs', 'qury').
SELECT pg_advisory_lock(%s, %s)

-- name: query_login_unlock
SELECT pg_advisory_unlock(%s, %s)

-- name: listen
-- Wake-ups: the channel pgstore.append_messages notifies.
LISTEN pgstore_messages

-- name: command_result
-- The recorded result of a command run once per idempotency key (its message id).
SELECT result FROM pgstore.command_results WHERE id = %(id)s

-- name: command_result_record
INSERT INTO pgstore.command_results (id, domain, type, result)
VALUES (%(id)s, %(domain)s, %(type)s, %(result)s)

-- name: message_exists
SELECT 1 FROM pgstore.message_ids WHERE id = %(id)s

-- name: handler_position
SELECT position FROM pgstore.handler_positions WHERE handler = %(handler)s

-- name: aggregate_load_for_update
-- aggregate_load, locking the row until the handler's transaction ends (a re-run
-- after a lost race: see UnitOfWork.lock_on_load).
SELECT version, data, domain FROM pgstore.aggregates
 WHERE domain IN (%(domain)s, '') AND category = %(category)s AND id = %(id)s
 ORDER BY domain DESC
 LIMIT 1
   FOR UPDATE

-- name: aggregate_find_for_update
SELECT id, version, data, domain FROM pgstore.aggregates
 WHERE domain IN (%(domain)s, '') AND category = %(category)s AND data @> %(filter)s
 ORDER BY id LIMIT %(limit)s
   FOR UPDATE

-- name: observatory_events
-- Events, newest first, filtered by what the search form gives (NULL: no filter),
-- a page at a time (before: the global position the page starts below).
SELECT e.global_position, e.id, e.stream_name, e.category, e.type, e.position, e.time,
       e.correlation_id, e.causation_id
  FROM pgstore.events e
 WHERE (%(category)s::text IS NULL OR e.category = %(category)s)
   AND (%(stream)s::text IS NULL
        OR (e.category = split_part(%(stream)s, '-', 1) AND e.stream_name = %(stream)s))
   AND (%(type)s::text IS NULL OR e.type = %(type)s)
   AND (%(correlation)s::text IS NULL OR e.correlation_id = %(correlation)s)
   AND (%(since)s::timestamptz IS NULL OR e.time >= %(since)s)
   AND (%(before)s::bigint IS NULL OR e.global_position < %(before)s)
 ORDER BY e.global_position DESC
 LIMIT %(limit)s

-- name: observatory_categories
-- Categories from the stream heads (one row per stream, not per message).
SELECT category, count(*) AS streams, sum(version + 1) AS events,
       max(last_global_position) AS last_global_position
  FROM pgstore.stream_heads
 GROUP BY category
 ORDER BY category
 LIMIT 500

-- name: observatory_event
-- One event by id, with its data and metadata as JSON text.
SELECT m.global_position, m.id, m.stream_name, m.category, m.type, m.position, m.time,
       m.data::text, m.metadata::text
  FROM pgstore.message_ids i
  JOIN pgstore.messages m
    ON m.category = split_part(i.stream_name, '-', 1) AND m.global_position = i.global_position
 WHERE i.id = %(id)s

-- name: observatory_effects
-- What an event caused: events whose causation is it, among the next 10,000 events
-- (a bounded scan: causation is not indexed, and effects follow their cause closely).
SELECT m.id, m.stream_name, m.type, m.global_position
  FROM (SELECT * FROM pgstore.messages
         WHERE global_position > %(after)s
         ORDER BY global_position
         LIMIT 10000) m
 WHERE m.metadata->>'causation_id' = %(id)s
 ORDER BY m.global_position
 LIMIT 50

-- name: observatory_since
-- Events appended since a global position (below the horizon), for the live feed.
SELECT global_position, id, stream_name, category, type, time
  FROM pgstore.messages
 WHERE global_position >= %(after)s AND global_position < pgstore.global_position_horizon()
 ORDER BY global_position
 LIMIT 200

-- name: observatory_last_position
SELECT coalesce(max(global_position), 0) FROM pgstore.messages
 WHERE global_position < pgstore.global_position_horizon()

-- name: liveness
-- /healthz: does the database answer?
SELECT 1

-- name: replica_in_recovery
SELECT pg_is_in_recovery()

-- name: replica_primary_lsn
-- Where the primary's WAL is now (what has committed there is at or before it).
SELECT pg_current_wal_lsn()

-- name: replica_replayed
-- Whether a standby has replayed the primary's WAL up to a position.
SELECT coalesce(pg_last_wal_replay_lsn() >= %(lsn)s::pg_lsn, false)

-- name: replica_lag
-- A standby's distance behind the primary: WAL bytes not replayed yet, and the age of
-- the last transaction it replayed.
SELECT pg_wal_lsn_diff(%(lsn)s::pg_lsn, pg_last_wal_replay_lsn())::bigint,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
