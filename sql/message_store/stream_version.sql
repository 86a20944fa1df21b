-- Message DB's stream_version(): the last position, NULL for no stream.
CREATE OR REPLACE FUNCTION message_store.stream_version(
  stream_name varchar
)
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
  SELECT pgstore.stream_version(stream_version.stream_name)
$$;
