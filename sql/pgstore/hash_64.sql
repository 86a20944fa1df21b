-- The first 64 bits of md5(value) as a signed bigint (Message DB's hash_64).
CREATE OR REPLACE FUNCTION pgstore.hash_64(
  value text
)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT left('x' || md5(hash_64.value), 17)::bit(64)::bigint
$$;
