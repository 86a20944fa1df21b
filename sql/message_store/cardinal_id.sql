-- Message DB's cardinal_id(), as pgstore.cardinal_id().
CREATE OR REPLACE FUNCTION message_store.cardinal_id(
  stream_name varchar
)
RETURNS varchar
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT pgstore.cardinal_id(cardinal_id.stream_name)
$$;
