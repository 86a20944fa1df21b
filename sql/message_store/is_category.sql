-- Message DB's is_category(), as pgstore.is_category().
CREATE OR REPLACE FUNCTION message_store.is_category(
  stream_name varchar
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT pgstore.is_category(is_category.stream_name)
$$;
