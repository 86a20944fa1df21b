-- Appends messages to one stream atomically and returns, per message, its id,
-- stream position and global position.
--
-- expected_version: NULL = no check; -1 = the stream must not exist yet; N = the
-- stream's last position must be N. A mismatch raises wrong_expected_version (PS001).
-- Re-appending message ids that are already in this stream (all of them, as one
-- earlier append wrote them) returns their original positions and writes nothing;
-- an id already used in another stream raises duplicate_message_id (PS003).
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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _count int := coalesce(cardinality(append_messages.ids), 0);
  _category text := pgstore.category(append_messages.stream_name);
  _last_position bigint;
  _last_global_position bigint;
  _own_xid xid8;
  _ordinal int;
  _first_global_position bigint;
  _inserted int;
  _existing int;
  _type text;
  _datum jsonb;
BEGIN
  PERFORM pgstore.check_name('stream', append_messages.stream_name);

  IF _count = 0 THEN
    RAISE EXCEPTION 'Nothing to append: no messages given (Stream: %)', append_messages.stream_name
      USING ERRCODE = 'PS005';
  END IF;
  IF cardinality(append_messages.types) IS DISTINCT FROM _count
      OR cardinality(append_messages.data) IS DISTINCT FROM _count
      OR (append_messages.metadata IS NOT NULL
          AND cardinality(append_messages.metadata) <> _count) THEN
    RAISE EXCEPTION 'ids, types, data and metadata must have the same length (Stream: %, Ids: %, Types: %, Data: %, Metadata: %)',
        append_messages.stream_name, _count, cardinality(append_messages.types),
        cardinality(append_messages.data), cardinality(append_messages.metadata)
      USING ERRCODE = 'PS005';
  END IF;
  IF array_position(append_messages.ids, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'Message id must not be NULL (Stream: %)', append_messages.stream_name
      USING ERRCODE = 'PS005';
  END IF;
  FOREACH _type IN ARRAY append_messages.types LOOP
    PERFORM pgstore.check_name('type', _type);
  END LOOP;
  FOREACH _datum IN ARRAY append_messages.data LOOP
    PERFORM pgstore.check_payload('data', _datum, append_messages.stream_name);
  END LOOP;
  IF append_messages.metadata IS NOT NULL THEN
    FOREACH _datum IN ARRAY append_messages.metadata LOOP
      PERFORM pgstore.check_payload('metadata', _datum, append_messages.stream_name);
    END LOOP;
  END IF;

  -- Appends to one stream take turns from here to commit, so the position read
  -- below is still the last one when this transaction commits (gap-free positions,
  -- exact expected-version checks). The lock is per stream (a hash of its name, in
  -- pgstore's own two-key advisory lock space): writers to other streams, even in
  -- the same category, never wait for it.
  PERFORM pg_advisory_xact_lock(1885823852, hashtext(append_messages.stream_name));

  SELECT m.position, m.global_position
    INTO _last_position, _last_global_position
    FROM pgstore.messages m
   WHERE m.category = _category
     AND m.stream_name = append_messages.stream_name
   ORDER BY m.position DESC
   LIMIT 1;
  _last_position := coalesce(_last_position, -1);

  IF append_messages.expected_version IS NOT NULL
      AND append_messages.expected_version <> _last_position THEN
    -- An idempotent retry of an append that already happened: answer as it did.
    RETURN QUERY SELECT * FROM pgstore.find_appended(append_messages.stream_name, append_messages.ids);
    IF FOUND THEN
      RETURN;
    END IF;
    RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
        append_messages.expected_version, append_messages.stream_name, _last_position
      USING ERRCODE = 'PS001';
  END IF;

  -- Global positions order by writer transaction id. A stream's positions must
  -- follow the same order, so a transaction that got its xid before the stream's
  -- last writer (possible only if it wrote something else first, then waited on the
  -- lock above) may not append after it: it must retry as a new transaction.
  _own_xid := pg_current_xact_id_if_assigned();
  IF _own_xid IS NOT NULL AND _last_global_position IS NOT NULL
      AND (_last_global_position >> 16) > _own_xid::text::bigint THEN
    RAISE EXCEPTION 'Stream order conflict: a newer transaction appended to this stream first; retry the transaction (Stream: %)',
        append_messages.stream_name
      USING ERRCODE = 'PS006';
  END IF;

  -- The message's ordinal within its transaction lives in a transaction-local
  -- setting, so global positions stay unique across all appends of one transaction.
  _ordinal := coalesce(nullif(current_setting('pgstore.transaction_ordinal', true), ''), '0')::int;
  IF _ordinal + _count > 65536 THEN
    RAISE EXCEPTION 'Too many messages in one transaction: at most 65536 (Stream: %, Already appended: %, Appending: %)',
        append_messages.stream_name, _ordinal, _count
      USING ERRCODE = 'PS007';
  END IF;
  PERFORM set_config('pgstore.transaction_ordinal', (_ordinal + _count)::text, true);
  _first_global_position := (pg_current_xact_id()::text::bigint << 16) + _ordinal;

  INSERT INTO pgstore.message_ids AS mi (id, stream_name, position, global_position)
  SELECT u.id, append_messages.stream_name, _last_position + u.n, _first_global_position + u.n - 1
    FROM unnest(append_messages.ids) WITH ORDINALITY AS u (id, n)
  ON CONFLICT (id) DO NOTHING;
  GET DIAGNOSTICS _inserted = ROW_COUNT;

  IF _inserted < _count THEN
    _existing := _count - _inserted;
    IF _inserted = 0 THEN
      RETURN QUERY SELECT * FROM pgstore.find_appended(append_messages.stream_name, append_messages.ids);
      IF FOUND THEN
        RETURN;
      END IF;
    END IF;
    RAISE EXCEPTION 'Duplicate message id: % of % ids were already appended, to this or another stream (Stream: %, Ids: %)',
        _existing, _count, append_messages.stream_name, append_messages.ids
      USING ERRCODE = 'PS003';
  END IF;

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
    _last_position + u.n,
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
