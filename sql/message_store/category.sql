-- Message DB's category(), as pgstore.category().
CREATE OR REPLACE FUNCTION message_store.category(
  stream_name varchar
)
RETURNS varchar
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT pgstore.category(category.stream_name)
$$;
