-- A stream's last position; NULL when the stream has no messages.
CREATE OR REPLACE FUNCTION pgstore.stream_version(
  stream_name text
)
RETURNS bigint
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT max(m.position)
    FROM pgstore.messages m
   WHERE m.category = pgstore.category(stream_version.stream_name)
     AND m.stream_name = stream_version.stream_name
$$;
