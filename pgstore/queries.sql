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

-- name: global_position_horizon
SELECT pgstore.global_position_horizon()
