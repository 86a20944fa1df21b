-- Copies a category's next messages into a stream handler's pgmq queue, in global
-- order, and moves the handler's feeder position past them, in one transaction, so
-- each message is queued exactly once and none is skipped (it reads through the
-- gap-safe read_category). Returns how many messages it moved past; 0 when there was
-- nothing new or another feeder holds this handler.
--
-- Only what the handler will run is queued: `types` (NULL: every type) and
-- `source_stream` (a category matches each of its streams; NULL: any origin), the
-- same rules as pgstore.handlers.HandlerSpec.
CREATE OR REPLACE FUNCTION pgstore.feed_queue(
  handler text,
  queue text,
  category text,
  batch_size int,
  types text[] DEFAULT NULL,
  source_stream text DEFAULT NULL
)
RETURNS int
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _position bigint;
  _passed int;
  _last bigint;
  _messages jsonb[];
  _groups jsonb[];
BEGIN
  -- One feeder at a time per handler keeps the queue in global order.
  SELECT p.position
    INTO _position
    FROM pgstore.handler_positions p
   WHERE p.handler = feed_queue.handler
     FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;

  SELECT
    count(*),
    max(m.global_position),
    array_agg(
      jsonb_build_object(
        'id', m.id,
        'stream_name', m.stream_name,
        'type', m.type,
        'position', m.position,
        'global_position', m.global_position,
        'data', m.data,
        'metadata', m.metadata,
        'time', m.time
      ) ORDER BY m.global_position
    ) FILTER (WHERE m.wanted),
    array_agg(jsonb_build_object('x-pgmq-group', m.stream_name) ORDER BY m.global_position)
      FILTER (WHERE m.wanted)
  INTO _passed, _last, _messages, _groups
  FROM (
    SELECT r.*,
           (feed_queue.types IS NULL OR r.type = ANY (feed_queue.types))
           AND (feed_queue.source_stream IS NULL
                OR r.metadata->>'origin_stream' = feed_queue.source_stream
                OR (strpos(feed_queue.source_stream, '-') = 0
                    AND split_part(r.metadata->>'origin_stream', '-', 1) = feed_queue.source_stream))
             AS wanted
      FROM pgstore.read_category(feed_queue.category, _position, feed_queue.batch_size) r
  ) m;

  IF _passed = 0 THEN
    RETURN 0;
  END IF;
  IF _messages IS NOT NULL THEN
    PERFORM pgmq.send_batch(feed_queue.queue, _messages, _groups);
  END IF;
  UPDATE pgstore.handler_positions
     SET position = _last + 1, updated_at = now()
   WHERE handler_positions.handler = feed_queue.handler;
  RETURN _passed;
END;
$$;
