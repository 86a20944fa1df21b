-- Probe functions for bench/append_cost.py: pgstore.append_messages' work, piece by
-- piece. Each has its signature and its shell (plpgsql, SECURITY DEFINER, a fixed
-- search_path, RETURN QUERY of the insert) and does a cumulative share of its work.
-- None checks its input, locks or notifies: they exist to be measured, never called.
CREATE SCHEMA bench_cost;

-- The shell and the message insert, nothing else: the floor of any append function.
CREATE FUNCTION bench_cost.insert_only(
  stream_name text, ids uuid[], types text[], data jsonb[],
  metadata jsonb[] DEFAULT NULL, expected_version bigint DEFAULT NULL
)
RETURNS SETOF pgstore.appended
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _first bigint := (pg_current_xact_id()::text::bigint + pgstore.xid_offset()) << 16;
BEGIN
  RETURN QUERY
  INSERT INTO pgstore.messages
    (global_position, position, stream_name, category, type, data, metadata, id, consumer_hash)
  SELECT _first + u.n - 1, _first + u.n - 1, insert_only.stream_name,
         split_part(insert_only.stream_name, '-', 1), u.type, u.data, u.metadata, u.id,
         pgstore.hash_64(pgstore.cardinal_id(insert_only.stream_name))
    FROM unnest(insert_only.ids, insert_only.types, insert_only.data, insert_only.metadata)
         WITH ORDINALITY AS u (id, type, data, metadata, n)
  RETURNING id, position, global_position;
END;
$$;

-- + claiming the ids in pgstore.message_ids (global id uniqueness).
CREATE FUNCTION bench_cost.with_ids(
  stream_name text, ids uuid[], types text[], data jsonb[],
  metadata jsonb[] DEFAULT NULL, expected_version bigint DEFAULT NULL
)
RETURNS SETOF pgstore.appended
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _first bigint := (pg_current_xact_id()::text::bigint + pgstore.xid_offset()) << 16;
BEGIN
  INSERT INTO pgstore.message_ids (id, stream_name, global_position)
  SELECT u.id, with_ids.stream_name, _first + u.n - 1
    FROM unnest(with_ids.ids) WITH ORDINALITY AS u (id, n)
  ON CONFLICT (id) DO NOTHING;

  RETURN QUERY
  INSERT INTO pgstore.messages
    (global_position, position, stream_name, category, type, data, metadata, id, consumer_hash)
  SELECT _first + u.n - 1, _first + u.n - 1, with_ids.stream_name,
         split_part(with_ids.stream_name, '-', 1), u.type, u.data, u.metadata, u.id,
         pgstore.hash_64(pgstore.cardinal_id(with_ids.stream_name))
    FROM unnest(with_ids.ids, with_ids.types, with_ids.data, with_ids.metadata)
         WITH ORDINALITY AS u (id, type, data, metadata, n)
  RETURNING id, position, global_position;
END;
$$;

-- + claiming the positions on the stream's head row (versions, expected version).
CREATE FUNCTION bench_cost.with_version(
  stream_name text, ids uuid[], types text[], data jsonb[],
  metadata jsonb[] DEFAULT NULL, expected_version bigint DEFAULT NULL
)
RETURNS SETOF pgstore.appended
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _count int := cardinality(with_version.ids);
  _category text := split_part(with_version.stream_name, '-', 1);
  _first bigint := (pg_current_xact_id()::text::bigint + pgstore.xid_offset()) << 16;
  _version bigint;
BEGIN
  INSERT INTO pgstore.message_ids (id, stream_name, global_position)
  SELECT u.id, with_version.stream_name, _first + u.n - 1
    FROM unnest(with_version.ids) WITH ORDINALITY AS u (id, n)
  ON CONFLICT (id) DO NOTHING;

  INSERT INTO pgstore.stream_heads AS h (stream_name, category, version, last_global_position)
  VALUES (with_version.stream_name, _category, _count - 1, _first + _count - 1)
  ON CONFLICT ON CONSTRAINT stream_heads_pkey DO UPDATE
     SET version = h.version + _count,
         previous_global_position = h.last_global_position,
         last_global_position = excluded.last_global_position
   WHERE with_version.expected_version IS NULL
      OR h.version = with_version.expected_version
  RETURNING h.version - _count INTO _version;

  RETURN QUERY
  INSERT INTO pgstore.messages
    (global_position, position, stream_name, category, type, data, metadata, id, consumer_hash)
  SELECT _first + u.n - 1, _version + u.n, with_version.stream_name, _category,
         u.type, u.data, u.metadata, u.id,
         pgstore.hash_64(pgstore.cardinal_id(with_version.stream_name))
    FROM unnest(with_version.ids, with_version.types, with_version.data, with_version.metadata)
         WITH ORDINALITY AS u (id, type, data, metadata, n)
  RETURNING id, position, global_position;
END;
$$;

-- The real append_messages with its wake-up on or off (pgstore.wake_up): the same
-- wrapper for both, so their ratio is what the wake-up costs.
CREATE OR REPLACE FUNCTION bench_cost.append_waking(
  wake_up text,
  stream_name text,
  ids uuid[],
  types text[],
  data jsonb[],
  metadata jsonb[] DEFAULT NULL
)
RETURNS SETOF pgstore.appended
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM set_config('pgstore.wake_up', append_waking.wake_up, true);
  RETURN QUERY SELECT * FROM pgstore.append_messages(
    append_waking.stream_name, append_waking.ids, append_waking.types,
    append_waking.data, append_waking.metadata);
END;
$$;
