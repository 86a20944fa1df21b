-- Message DB's id(), as pgstore.id().
CREATE OR REPLACE FUNCTION message_store.id(
  stream_name varchar
)
RETURNS varchar
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT pgstore.id(id.stream_name)
$$;
