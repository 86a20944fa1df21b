-- The Message DB version whose interface this schema reproduces.
CREATE OR REPLACE FUNCTION message_store.message_store_version()
RETURNS varchar
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT '1.3.0'::varchar
$$;
