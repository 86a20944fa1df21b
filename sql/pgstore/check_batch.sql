-- Raises invalid_message (PS005) unless ids, types, data and metadata form a batch:
-- at least one message, the same length, one-dimensional arrays starting at 1, no
-- NULL id.
CREATE OR REPLACE FUNCTION pgstore.check_batch(
  stream_name text,
  ids uuid[],
  types text[],
  data jsonb[],
  metadata jsonb[]
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
  _count int := coalesce(cardinality(check_batch.ids), 0);
BEGIN
  IF _count = 0 THEN
    RAISE EXCEPTION 'Nothing to append: no messages given (Stream: %)', check_batch.stream_name
      USING ERRCODE = 'PS005';
  END IF;
  IF cardinality(check_batch.types) IS DISTINCT FROM _count
      OR cardinality(check_batch.data) IS DISTINCT FROM _count
      OR cardinality(check_batch.metadata) <> _count THEN
    RAISE EXCEPTION 'ids, types, data and metadata must have the same length (Stream: %, Ids: %, Types: %, Data: %, Metadata: %)',
        check_batch.stream_name, _count, cardinality(check_batch.types),
        cardinality(check_batch.data), cardinality(check_batch.metadata)
      USING ERRCODE = 'PS005';
  END IF;
  IF array_ndims(check_batch.ids) <> 1 OR array_lower(check_batch.ids, 1) <> 1
      OR array_ndims(check_batch.types) <> 1 OR array_lower(check_batch.types, 1) <> 1
      OR array_ndims(check_batch.data) <> 1 OR array_lower(check_batch.data, 1) <> 1
      OR array_ndims(check_batch.metadata) <> 1 OR array_lower(check_batch.metadata, 1) <> 1 THEN
    RAISE EXCEPTION 'ids, types, data and metadata must be one-dimensional arrays starting at 1 (Stream: %, Bounds: %, %, %, %)',
        check_batch.stream_name, array_dims(check_batch.ids), array_dims(check_batch.types),
        array_dims(check_batch.data), array_dims(check_batch.metadata)
      USING ERRCODE = 'PS005';
  END IF;
  IF array_position(check_batch.ids, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'Message id must not be NULL (Stream: %)', check_batch.stream_name
      USING ERRCODE = 'PS005';
  END IF;
END;
$$;
