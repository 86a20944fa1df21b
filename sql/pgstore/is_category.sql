-- True when the name has no '-', i.e. names a category rather than a stream.
CREATE OR REPLACE FUNCTION pgstore.is_category(
  stream_name text
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT strpos(is_category.stream_name, '-') = 0
$$;
