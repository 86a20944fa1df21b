-- The feeder under its first name, whose `batch_size` was in truth the queue's length
-- limit: kept so that a dispatcher of the previous release keeps working during a
-- rolling upgrade. New code calls pgstore.fill_queue.
CREATE OR REPLACE FUNCTION pgstore.feed_queue(
  handler text,
  queue text,
  category text,
  batch_size int,
  types text[] DEFAULT NULL,
  source_stream text DEFAULT NULL
)
RETURNS int
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pgstore.fill_queue(feed_queue.handler, feed_queue.queue, feed_queue.category,
                            feed_queue.batch_size, feed_queue.types, feed_queue.source_stream)
$$;
