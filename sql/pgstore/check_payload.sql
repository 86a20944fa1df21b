-- Raises unless `value` is a JSON object (metadata may also be NULL) no larger than
-- pgstore's payload limit of 1 MiB (its stored jsonb size), and nested at most 100
-- levels deep: the object is level 1, each value one deeper than its container
-- (deeper documents are valid JSON, but Python's decoder, and so every Python reader
-- of the store, gives up on them near 1,000 levels; 100 leaves room for any caller).
CREATE OR REPLACE FUNCTION pgstore.check_payload(
  kind text,
  value jsonb,
  stream_name text
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF check_payload.value IS NULL THEN
    IF check_payload.kind = 'metadata' THEN
      RETURN;
    END IF;
    RAISE EXCEPTION 'Message % must be a JSON object, not NULL (Stream: %)',
        check_payload.kind, check_payload.stream_name
      USING ERRCODE = 'PS005';
  END IF;
  IF jsonb_typeof(check_payload.value) <> 'object' THEN
    RAISE EXCEPTION 'Message % must be a JSON object, not a JSON % (Stream: %)',
        check_payload.kind, jsonb_typeof(check_payload.value), check_payload.stream_name
      USING ERRCODE = 'PS005';
  END IF;
  IF jsonb_path_exists(check_payload.value, 'strict $.**{100}') THEN
    RAISE EXCEPTION 'Message % is nested too deeply: more than 100 levels (Stream: %)',
        check_payload.kind, check_payload.stream_name
      USING ERRCODE = 'PS005';
  END IF;
  IF pg_column_size(check_payload.value) > 1048576 THEN
    RAISE EXCEPTION 'Message % is too large: % bytes, the limit is 1048576 (Stream: %)',
        check_payload.kind, pg_column_size(check_payload.value), check_payload.stream_name
      USING ERRCODE = 'PS004';
  END IF;
END;
$$;
