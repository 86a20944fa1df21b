-- For `pgstore query`: true when a result row's size (in bytes, its text form) is
-- within `max_bytes`; raises invalid_argument (PS008) otherwise, so a huge row is
-- refused before it is sent and the client's memory stays bounded.
CREATE OR REPLACE FUNCTION pgstore.check_row_size(
  size bigint,
  max_bytes bigint
)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF check_row_size.size > check_row_size.max_bytes THEN
    RAISE EXCEPTION 'A result row is too large: % bytes, the limit is % (narrow the columns)',
        check_row_size.size, check_row_size.max_bytes
      USING ERRCODE = 'PS008';
  END IF;
  RETURN true;
END;
$$;
