-- Raises invalid_argument (PS008) unless batch_size is NULL, -1 (no limit) or positive.
CREATE OR REPLACE FUNCTION pgstore.check_batch_size(
  batch_size bigint
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF check_batch_size.batch_size = 0 OR check_batch_size.batch_size < -1 THEN
    RAISE EXCEPTION 'Batch size must be -1 (no limit) or at least 1 (Batch Size: %)',
        check_batch_size.batch_size
      USING ERRCODE = 'PS008';
  END IF;
END;
$$;
