-- The last message of a stream (optionally the last of one type): zero or one row.
CREATE OR REPLACE FUNCTION pgstore.last_message(
  stream_name text,
  type text DEFAULT NULL
)
RETURNS SETOF pgstore.messages
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pgstore.check_name('stream', last_message.stream_name);

  RETURN QUERY
  SELECT *
    FROM pgstore.messages m
   WHERE m.category = pgstore.category(last_message.stream_name)
     AND m.stream_name = last_message.stream_name
     AND (last_message.type IS NULL OR m.type = last_message.type)
   ORDER BY m.position DESC
   LIMIT 1;
END;
$$;
