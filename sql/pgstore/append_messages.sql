-- Appends messages to one stream atomically and returns, per message, its id,
-- stream position and global position.
--
-- expected_version: NULL = no check; -1 = the stream must not exist yet; N = the
-- stream's last position must be N. A mismatch raises wrong_expected_version (PS001).
-- Re-appending message ids that are already in this stream (all of them, as one
-- earlier append wrote them) returns their original positions and writes nothing;
-- an id already used in another stream raises duplicate_message_id (PS003).
--
-- Global positions: ((transaction id + xid_offset()) << 16) + an ordinal within that
-- transaction's range of 65,536 positions (see global_position_horizon.sql for why
-- readers then never skip a late commit). Nothing the caller controls enters it: the
-- next free ordinal is looked up on the unique index of positions.
--
-- A stream's appends take turns on its head row (locked by the upsert until commit;
-- only pgstore's own functions can write it). A transaction may lock the row after a
-- transaction with a newer id (it got its id first, then waited): its messages must
-- still sort after that writer's in global order, so they take the next free
-- positions in *that* writer's range. The writer has committed (its lock was waited
-- for), and this transaction is still running with an older id, so the horizon keeps
-- every reader below both until this one commits: no reader can have passed them.
--
-- Written for speed: every check is a plain expression (no statement) and the
-- detailed error is built only when one fails. The usual append (behind an older
-- writer) is three statements: claim the positions on the head row, claim the ids,
-- insert the messages; a transaction's later appends (a dispatch batch's events, say)
-- add one look for the next free position of its range.
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
  -- Whether this transaction had an id before this call (it may have appended).
  _had_xid boolean := pg_current_xact_id_if_assigned() IS NOT NULL;
  _xid bigint;
  _first_global_position bigint;
  _version bigint;
  _previous_global_position bigint;
  _inserted int;
  _i int;
BEGIN
  IF append_messages.stream_name IS NULL
      OR length(append_messages.stream_name) > 500
      OR octet_length(append_messages.stream_name) > 1000
      OR strpos(append_messages.stream_name, '-') NOT BETWEEN 2 AND length(append_messages.stream_name) - 1
      OR append_messages.stream_name ~ '[[:cntrl:]]' THEN
    PERFORM pgstore.check_name('stream', append_messages.stream_name);
  END IF;
  -- Every array must be one-dimensional and start at 1 (an array '[0:0]={...}' has
  -- the right cardinality but nothing at index 1, which the checks below read).
  IF _count = 0
      OR cardinality(append_messages.types) IS DISTINCT FROM _count
      OR cardinality(append_messages.data) IS DISTINCT FROM _count
      OR cardinality(append_messages.metadata) <> _count
      OR array_position(append_messages.ids, NULL) IS NOT NULL
      OR array_ndims(append_messages.ids) <> 1 OR array_lower(append_messages.ids, 1) <> 1
      OR array_ndims(append_messages.types) <> 1 OR array_lower(append_messages.types, 1) <> 1
      OR array_ndims(append_messages.data) <> 1 OR array_lower(append_messages.data, 1) <> 1
      OR array_ndims(append_messages.metadata) <> 1
      OR array_lower(append_messages.metadata, 1) <> 1 THEN
    PERFORM pgstore.check_batch(append_messages.stream_name, append_messages.ids,
      append_messages.types, append_messages.data, append_messages.metadata);
  END IF;
  IF _count > 65536 THEN
    RAISE EXCEPTION 'Too many messages in one transaction: at most 65536 (Stream: %, Already appended: 0, Appending: %)',
        append_messages.stream_name, _count
      USING ERRCODE = 'PS007';
  END IF;
  FOR _i IN 1.._count LOOP
    IF append_messages.types[_i] IS NULL
        OR length(append_messages.types[_i]) NOT BETWEEN 1 AND 500
        OR octet_length(append_messages.types[_i]) > 1000
        OR append_messages.types[_i] ~ '[[:cntrl:]]' THEN
      PERFORM pgstore.check_name('type', append_messages.types[_i]);
    END IF;
    -- A document nested more than 100 levels deep takes at least 808 bytes (array
    -- elements are never compressed): smaller ones skip the depth walk.
    IF jsonb_typeof(append_messages.data[_i]) IS DISTINCT FROM 'object'
        OR pg_column_size(append_messages.data[_i]) > 1048576
        OR (pg_column_size(append_messages.data[_i]) > 768
            AND jsonb_path_exists(append_messages.data[_i], 'strict $.**{100}')) THEN
      PERFORM pgstore.check_payload('data', append_messages.data[_i], append_messages.stream_name);
    END IF;
    IF append_messages.metadata[_i] IS NOT NULL
        AND (jsonb_typeof(append_messages.metadata[_i]) <> 'object'
             OR pg_column_size(append_messages.metadata[_i]) > 1048576
             OR (pg_column_size(append_messages.metadata[_i]) > 768
                 AND jsonb_path_exists(append_messages.metadata[_i], 'strict $.**{100}'))) THEN
      PERFORM pgstore.check_payload('metadata', append_messages.metadata[_i], append_messages.stream_name);
    END IF;
  END LOOP;

  _xid := pg_current_xact_id()::text::bigint + pgstore.xid_offset();
  -- The next free position of this transaction's own range: its first, unless it has
  -- written before (an earlier append, or any row: it had an id). Nobody else writes
  -- into a range while its transaction runs (another writer continues a range only
  -- after waiting for one of its head rows, that is once it has committed), so this
  -- look holds until commit, however long the head row below keeps this one waiting.
  _first_global_position := _xid << 16;
  IF _had_xid THEN
    SELECT coalesce(max(mi.global_position) + 1, _xid << 16)
      INTO _first_global_position
      FROM pgstore.message_ids mi
     WHERE mi.global_position >= _xid << 16
       AND mi.global_position < (_xid + 1) << 16;
    IF _first_global_position + _count > (_xid + 1) << 16 THEN
      RAISE EXCEPTION 'Too many messages in one transaction: at most 65536 (Stream: %, Already appended: %, Appending: %)',
          append_messages.stream_name, _first_global_position - (_xid << 16), _count
        USING ERRCODE = 'PS007';
    END IF;
  END IF;

  -- Claim the positions on the stream's head row: one statement, and the row lock
  -- that makes the stream's appends take turns until commit. A version that does not
  -- match updates nothing and returns no row. The global positions written here are
  -- the next of this transaction's range (right unless the previous writer is newer:
  -- then they are corrected below).
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
    -- A repeated append comes here when its expected version has passed (the first
    -- one moved it): answer it as the repeat it is. (Repeats without an expected
    -- version are answered below, when the ids turn out to be taken: an append that
    -- is not a repeat, the usual case, pays for no probe.)
    IF NOT FOUND AND EXISTS (
        SELECT FROM pgstore.message_ids mi WHERE mi.id = append_messages.ids[1]) THEN
      RETURN QUERY SELECT * FROM pgstore.find_appended(append_messages.stream_name, append_messages.ids);
      IF FOUND THEN
        RETURN;
      END IF;
      PERFORM pgstore.refuse_duplicate_ids(append_messages.stream_name, append_messages.ids);
    END IF;
    RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
        append_messages.expected_version, append_messages.stream_name,
        CASE WHEN _version = -1 THEN -1  -- the stream is new: this append created its row
             ELSE coalesce(pgstore.stream_version(append_messages.stream_name), -1) END
      USING ERRCODE = 'PS001';
  END IF;

  IF coalesce(_previous_global_position >> 16, 0) <= _xid THEN
    -- The usual case: the stream's last message sorts below this transaction's range
    -- (or in it: this transaction wrote it), so the positions taken above stand. Only
    -- this transaction writes into its range: no retry.
    INSERT INTO pgstore.message_ids AS mi (id, stream_name, global_position)
    SELECT u.id, append_messages.stream_name, _first_global_position + u.n - 1
      FROM unnest(append_messages.ids) WITH ORDINALITY AS u (id, n)
    ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS _inserted = ROW_COUNT;
  ELSE
    SELECT c.first_global_position, c.inserted
      INTO _first_global_position, _inserted
      FROM pgstore.claim_positions(append_messages.stream_name, append_messages.ids,
        greatest(_xid, _previous_global_position >> 16)) c;
    UPDATE pgstore.stream_heads h
       SET last_global_position = _first_global_position + _count - 1
     WHERE h.stream_name = append_messages.stream_name;
  END IF;
  IF _inserted < _count THEN
    IF _inserted = 0 AND _version >= 0 THEN
      -- A repeat (also one that committed while this one waited for the head row):
      -- give the positions back and answer as a repeat. (A stream this append
      -- created cannot hold a repeat: the error below undoes its head row.)
      UPDATE pgstore.stream_heads h
         SET version = h.version - _count,
             last_global_position = h.previous_global_position
       WHERE h.stream_name = append_messages.stream_name;
      RETURN QUERY SELECT * FROM pgstore.find_appended(append_messages.stream_name, append_messages.ids);
      IF FOUND THEN
        RETURN;
      END IF;
    END IF;
    PERFORM pgstore.refuse_duplicate_ids(append_messages.stream_name, append_messages.ids);
  END IF;

  -- Wake the dispatchers. A NOTIFY in every append would serialise commits
  -- (PostgreSQL queues notifications under one global lock at commit: measured at
  -- 16 writers, about 0.16x the throughput without it). So only the first writer of
  -- each 5 ms time bucket notifies: pg_try_advisory_xact_lock never waits, and the
  -- winner holds its bucket until it commits. A woken dispatcher reads until it finds
  -- nothing and looks once more shortly after, which picks up the writers that
  -- skipped their NOTIFY; its poll interval is the fallback for the rest.
  -- A transaction that will be prepared (two-phase commit) may not NOTIFY: it sets
  -- pgstore.wake_up = 'off' and leaves the wake-up to the dispatchers' polling.
  IF current_setting('pgstore.wake_up', true) IS DISTINCT FROM 'off'
     AND pg_try_advisory_xact_lock(
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
