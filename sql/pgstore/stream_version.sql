-- A stream's last position; NULL when the stream has no messages.
CREATE OR REPLACE FUNCTION pgstore.stream_version(
  stream_name text
)
RETURNS bigint
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT h.version FROM pgstore.stream_heads h WHERE h.stream_name = stream_version.stream_name
$$;
