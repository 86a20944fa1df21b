-- Message DB's hash_64(), as pgstore.hash_64().
CREATE OR REPLACE FUNCTION message_store.hash_64(
  value varchar
)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT pgstore.hash_64(hash_64.value)
$$;
