-- How many messages wait in a pgmq queue, and the enqueue time of the oldest.
-- (Zero and NULL for a queue that does not exist.)
CREATE OR REPLACE FUNCTION pgstore.queue_depth(
  queue text,
  OUT depth bigint,
  OUT oldest timestamptz
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  depth := 0;
  IF queue_depth.queue IS NULL OR to_regclass(format('pgmq.%I', 'q_' || queue_depth.queue)) IS NULL THEN
    RETURN;
  END IF;
  EXECUTE format('SELECT count(*), min(enqueued_at) FROM pgmq.%I', 'q_' || queue_depth.queue)
    INTO depth, oldest;
END;
$$;
