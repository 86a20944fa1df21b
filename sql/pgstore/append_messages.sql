-- Appends messages to one stream atomically and returns, per message, its id,
-- stream position and global position.
--
-- expected_version: NULL = no check; -1 = the stream must not exist yet; N = the
-- stream's last position must be N. A mismatch raises wrong_expected_version (PS001).
-- Re-appending message ids that are already in this stream (all of them, as one
-- earlier append wrote them) returns their original positions and writes nothing;
-- an id already used in another stream raises duplicate_message_id (PS003).
--
-- Written for speed: every check is a plain expression (no statement) and the
-- detailed error is built only when one fails; the work is three statements (claim
-- the ids, claim the positions, insert the messages).
CREATE OR REPLACE FUNCTION pgstore.append_messages(
  stream_name text,
  ids uuid[],
  types text[],
  data jsonb[],
  metadata jsonb[] DEFAULT NULL,
  expected_version bigint DEFAULT NULL
)
RETURNS SETOF pgstore.appended
LANGUAGE plpgsql
VOLATILE
-- Writers need EXECUTE on this function, not write access to the tables: it runs
-- as its owner, with a search_path of its own (every name in it is qualified).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _count int := coalesce(cardinality(append_messages.ids), 0);
  _category text := split_part(append_messages.stream_name, '-', 1);
  _xid_before xid8 := pg_current_xact_id_if_assigned();
  _ordinal int;
  _first_global_position bigint;
  _version bigint;
  _previous_global_position bigint;
  _inserted int;
  _i int;
BEGIN
  IF append_messages.stream_name IS NULL
      OR length(append_messages.stream_name) > 500
      OR strpos(append_messages.stream_name, '-') NOT BETWEEN 2 AND length(append_messages.stream_name) - 1
      OR append_messages.stream_name ~ '[[:cntrl:]]' THEN
    PERFORM pgstore.check_name('stream', append_messages.stream_name);
  END IF;
  IF _count = 0
      OR cardinality(append_messages.types) IS DISTINCT FROM _count
      OR cardinality(append_messages.data) IS DISTINCT FROM _count
      OR cardinality(append_messages.metadata) <> _count
      OR array_position(append_messages.ids, NULL) IS NOT NULL THEN
    PERFORM pgstore.check_batch(append_messages.stream_name, append_messages.ids,
      append_messages.types, append_messages.data, append_messages.metadata);
  END IF;
  FOR _i IN 1.._count LOOP
    IF append_messages.types[_i] IS NULL
        OR length(append_messages.types[_i]) NOT BETWEEN 1 AND 500
        OR append_messages.types[_i] ~ '[[:cntrl:]]' THEN
      PERFORM pgstore.check_name('type', append_messages.types[_i]);
    END IF;
    IF jsonb_typeof(append_messages.data[_i]) IS DISTINCT FROM 'object'
        OR pg_column_size(append_messages.data[_i]) > 1048576 THEN
      PERFORM pgstore.check_payload('data', append_messages.data[_i], append_messages.stream_name);
    END IF;
    IF append_messages.metadata[_i] IS NOT NULL
        AND (jsonb_typeof(append_messages.metadata[_i]) <> 'object'
             OR pg_column_size(append_messages.metadata[_i]) > 1048576) THEN
      PERFORM pgstore.check_payload('metadata', append_messages.metadata[_i], append_messages.stream_name);
    END IF;
  END LOOP;

  -- Appends to one stream take turns from here to commit (gap-free positions, exact
  -- expected versions), on a lock keyed by the stream in pgstore's own advisory lock
  -- space: writers to other streams, even of the same category, never wait. It comes
  -- before this transaction's first write, so a writer that waited here gets its
  -- transaction id (its global position) after the writer it waited for.
  PERFORM pg_advisory_xact_lock(1885823852, hashtext(append_messages.stream_name));

  -- Global position = (this transaction's xid8 << 16) + the message's ordinal within
  -- the transaction, kept in a transaction-local setting (see
  -- global_position_horizon.sql for why readers can then never skip a late commit).
  _ordinal := coalesce(nullif(current_setting('pgstore.transaction_ordinal', true), ''), '0')::int;
  IF _ordinal + _count > 65536 THEN
    RAISE EXCEPTION 'Too many messages in one transaction: at most 65536 (Stream: %, Already appended: %, Appending: %)',
        append_messages.stream_name, _ordinal, _count
      USING ERRCODE = 'PS007';
  END IF;
  _first_global_position :=
    ((pg_current_xact_id()::text::bigint + pgstore.xid_offset()) << 16) + _ordinal;

  -- Claim the message ids first: a repeated append is answered before it touches
  -- the stream, and a duplicate is refused.
  INSERT INTO pgstore.message_ids AS mi (id, stream_name, global_position)
  SELECT u.id, append_messages.stream_name, _first_global_position + u.n - 1
    FROM unnest(append_messages.ids) WITH ORDINALITY AS u (id, n)
  ON CONFLICT (id) DO NOTHING;
  GET DIAGNOSTICS _inserted = ROW_COUNT;
  IF _inserted < _count THEN
    IF _inserted = 0 THEN
      RETURN QUERY SELECT * FROM pgstore.find_appended(append_messages.stream_name, append_messages.ids);
      IF FOUND THEN
        RETURN;
      END IF;
    END IF;
    RAISE EXCEPTION 'Duplicate message id: % of % ids were already appended, to this or another stream (Stream: %, Ids: %)',
        _count - _inserted, _count, append_messages.stream_name, append_messages.ids
      USING ERRCODE = 'PS003';
  END IF;

  -- Claim the positions: the stream's head row holds its version, so this is one
  -- statement instead of a probe through the partitions. A version that does not
  -- match updates nothing and returns no row.
  INSERT INTO pgstore.stream_heads AS h (stream_name, category, version, last_global_position)
  VALUES (append_messages.stream_name, _category, _count - 1, _first_global_position + _count - 1)
  ON CONFLICT ON CONSTRAINT stream_heads_pkey DO UPDATE
     SET version = h.version + _count,
         previous_global_position = h.last_global_position,
         last_global_position = excluded.last_global_position
   WHERE append_messages.expected_version IS NULL
      OR h.version = append_messages.expected_version
  RETURNING h.version - _count, h.previous_global_position
  INTO _version, _previous_global_position;

  IF NOT FOUND
      OR (_version = -1 AND coalesce(append_messages.expected_version, -1) <> -1) THEN
    RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
        append_messages.expected_version, append_messages.stream_name,
        CASE WHEN _version = -1 THEN -1  -- the stream is new: this append created its row
             ELSE coalesce(pgstore.stream_version(append_messages.stream_name), -1) END
      USING ERRCODE = 'PS001';
  END IF;

  -- Global order is transaction order, and a stream's positions must follow it: a
  -- transaction that took its xid before the stream's last writer (it wrote
  -- something else first, then waited for this stream) may not append after it.
  IF _xid_before IS NOT NULL
      AND (_previous_global_position >> 16) > _xid_before::text::bigint + pgstore.xid_offset() THEN
    RAISE EXCEPTION 'Stream order conflict: a newer transaction appended to this stream first; retry the transaction (Stream: %)',
        append_messages.stream_name
      USING ERRCODE = 'PS006';
  END IF;

  _i := set_config('pgstore.transaction_ordinal', (_ordinal + _count)::text, true)::int;

  -- Wake the dispatchers. A NOTIFY in every append would serialise commits
  -- (PostgreSQL queues notifications under one global lock at commit: measured at
  -- 16 writers, about 0.16x the throughput without it). So only the first writer of
  -- each 5 ms time bucket notifies: pg_try_advisory_xact_lock never waits, and the
  -- winner holds its bucket until it commits. A woken dispatcher reads until it finds
  -- nothing and looks once more shortly after, which picks up the writers that
  -- skipped their NOTIFY; its poll interval is the fallback for the rest.
  IF pg_try_advisory_xact_lock(
      1885823853,
      ((extract(epoch FROM clock_timestamp()) * 200)::bigint % 2147483647)::int) THEN
    PERFORM pg_notify('pgstore_messages', _category);
  END IF;

  RETURN QUERY
  INSERT INTO pgstore.messages (
    global_position,
    position,
    stream_name,
    category,
    type,
    data,
    metadata,
    id,
    consumer_hash
  )
  SELECT
    _first_global_position + u.n - 1,
    _version + u.n,
    append_messages.stream_name,
    _category,
    u.type,
    u.data,
    u.metadata,
    u.id,
    pgstore.hash_64(pgstore.cardinal_id(append_messages.stream_name))
  FROM unnest(
    append_messages.ids,
    append_messages.types,
    append_messages.data,
    coalesce(append_messages.metadata, array_fill(NULL::jsonb, ARRAY[_count]))
  ) WITH ORDINALITY AS u (id, type, data, metadata, n)
  RETURNING id, position, global_position;
END;
$$;
