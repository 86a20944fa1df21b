-- Claims `ids` in pgstore.message_ids at the next free global positions of one
-- transaction's range (`range_xid`, offset included), for append_messages when the
-- usual case does not apply: the stream's last writer has a newer transaction id (its
-- range is the one to continue, see append_messages.sql). Returns the first position
-- and how many ids were new.
--
-- Two transactions may continue one committed writer's range at once (in different
-- streams): the unique index on global_position lets one win, and the other looks
-- again once it has committed. Only this rare path pays for the subtransaction.
CREATE OR REPLACE FUNCTION pgstore.claim_positions(
  stream_name text,
  ids uuid[],
  range_xid bigint,
  OUT first_global_position bigint,
  OUT inserted int
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _count int := cardinality(claim_positions.ids);
  _attempt int := 0;
BEGIN
  LOOP
    SELECT coalesce(max(mi.global_position) + 1, claim_positions.range_xid << 16)
      INTO first_global_position
      FROM pgstore.message_ids mi
     WHERE mi.global_position >= claim_positions.range_xid << 16
       AND mi.global_position < (claim_positions.range_xid + 1) << 16;
    IF first_global_position + _count > (claim_positions.range_xid + 1) << 16 THEN
      RAISE EXCEPTION 'Too many messages in one transaction: at most 65536 (Stream: %, Already appended: %, Appending: %)',
          claim_positions.stream_name,
          first_global_position - (claim_positions.range_xid << 16), _count
        USING ERRCODE = 'PS007';
    END IF;
    BEGIN
      INSERT INTO pgstore.message_ids AS mi (id, stream_name, global_position)
      SELECT u.id, claim_positions.stream_name, first_global_position + u.n - 1
        FROM unnest(claim_positions.ids) WITH ORDINALITY AS u (id, n)
      ON CONFLICT (id) DO NOTHING;
      GET DIAGNOSTICS inserted = ROW_COUNT;
      RETURN;
    EXCEPTION WHEN unique_violation THEN
      _attempt := _attempt + 1;
      IF _attempt >= 10 THEN
        RAISE EXCEPTION 'Stream order conflict: other appends kept taking the positions this one needs; retry the transaction (Stream: %)',
            claim_positions.stream_name
          USING ERRCODE = 'PS006';
      END IF;
    END;
  END LOOP;
END;
$$;
