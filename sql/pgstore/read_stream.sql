-- A stream's messages in position order, from `from_position` inclusive.
-- batch_size -1 means no limit. Not bounded by the global horizon: a stream read
-- (loading an aggregate) wants every committed message of the stream.
CREATE OR REPLACE FUNCTION pgstore.read_stream(
  stream_name text,
  from_position bigint DEFAULT 0,
  batch_size bigint DEFAULT 1000
)
RETURNS SETOF pgstore.messages
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pgstore.check_name('stream', read_stream.stream_name);
  PERFORM pgstore.check_batch_size(read_stream.batch_size);

  RETURN QUERY
  SELECT *
    FROM pgstore.messages m
   WHERE m.category = pgstore.category(read_stream.stream_name)
     AND m.stream_name = read_stream.stream_name
     AND m.position >= coalesce(read_stream.from_position, 0)
   ORDER BY m.position
   LIMIT nullif(coalesce(read_stream.batch_size, 1000), -1);
END;
$$;
