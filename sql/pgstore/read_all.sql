-- Every message ($all) in global order, from `from_global_position` inclusive,
-- bounded by the global position horizon like read_category.
CREATE OR REPLACE FUNCTION pgstore.read_all(
  from_global_position bigint DEFAULT 0,
  batch_size bigint DEFAULT 1000
)
RETURNS SETOF pgstore.messages
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pgstore.check_batch_size(read_all.batch_size);

  RETURN QUERY
  SELECT *
    FROM pgstore.messages m
   WHERE m.global_position >= coalesce(read_all.from_global_position, 0)
     AND m.global_position < pgstore.global_position_horizon()
   ORDER BY m.global_position
   LIMIT nullif(coalesce(read_all.batch_size, 1000), -1);
END;
$$;
