-- The gap-safe subscription read: a category's messages in global order, from
-- `from_global_position` inclusive, stopping below the global position horizon, so
-- a reader that advances past the last message it got never skips a message that
-- commits later (see global_position_horizon.sql).
--
-- Consumer groups: member m of a group of size n gets the streams whose stored
-- hash of the cardinal id falls in its slot (the same split as Message DB's).
-- correlation (a category) keeps messages whose metadata correlationStreamName is
-- in that category.
CREATE OR REPLACE FUNCTION pgstore.read_category(
  category text,
  from_global_position bigint DEFAULT 0,
  batch_size bigint DEFAULT 1000,
  consumer_group_member bigint DEFAULT NULL,
  consumer_group_size bigint DEFAULT NULL,
  correlation text DEFAULT NULL
)
RETURNS SETOF pgstore.messages
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pgstore.check_name('category', read_category.category);
  PERFORM pgstore.check_batch_size(read_category.batch_size);
  PERFORM pgstore.check_consumer_group(
    read_category.consumer_group_member, read_category.consumer_group_size);
  IF read_category.correlation IS NOT NULL THEN
    PERFORM pgstore.check_name('category', read_category.correlation);
  END IF;

  RETURN QUERY
  SELECT *
    FROM pgstore.messages m
   WHERE m.category = read_category.category
     AND m.global_position >= coalesce(read_category.from_global_position, 0)
     AND m.global_position < pgstore.global_position_horizon()
     AND (read_category.consumer_group_size IS NULL
          OR abs(m.consumer_hash % read_category.consumer_group_size)
             = read_category.consumer_group_member)
     AND (read_category.correlation IS NULL
          OR split_part(m.metadata->>'correlationStreamName', '-', 1) = read_category.correlation)
   ORDER BY m.global_position
   LIMIT nullif(coalesce(read_category.batch_size, 1000), -1);
END;
$$;
