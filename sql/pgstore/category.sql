-- The category of a stream: everything before the first '-'.
CREATE OR REPLACE FUNCTION pgstore.category(
  stream_name text
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT split_part(category.stream_name, '-', 1)
$$;
