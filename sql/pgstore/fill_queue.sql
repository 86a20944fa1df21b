-- Copies a category's next messages into a stream handler's pgmq queue, in global
-- order, and moves the handler's feeder position past them, in one transaction, so
-- each message is queued exactly once and none is skipped (it reads through the
-- gap-safe read_category). Returns how many messages it moved past; 0 when there was
-- nothing new, the queue was full, or another feeder holds this handler.
--
-- `queue_limit` is how many messages the queue may hold (waiting or in flight): the
-- feeder tops it up to that, never beyond. Why a limit: pgmq's grouped read scans
-- the whole queue, so a queue that grew with the backlog (fed faster than consumed)
-- made every read slower (bench/dispatch.py: a backlog of 20,000 events was handled
-- at 0.6x the rate of one of 2,000).
--
-- What is queued, and how, is pgstore.feed_batch's (the bodies, their groups, only
-- the types and source stream the handler runs).
CREATE OR REPLACE FUNCTION pgstore.fill_queue(
  handler text,
  queue text,
  category text,
  queue_limit int,
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
  _room bigint;
  _passed int;
  _last bigint;
  _messages jsonb[];
  _groups jsonb[];
BEGIN
  -- One feeder at a time per handler keeps the queue in global order.
  SELECT p.position
    INTO _position
    FROM pgstore.handler_positions p
   WHERE p.handler = fill_queue.handler
     FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  _room := fill_queue.queue_limit - (pgstore.queue_depth(fill_queue.queue)).depth;
  IF _room <= 0 THEN
    RETURN 0;
  END IF;

  SELECT b.passed, b.last, b.messages, b.groups
    INTO _passed, _last, _messages, _groups
    FROM pgstore.feed_batch(fill_queue.category, _position, _room,
                            fill_queue.types, fill_queue.source_stream) b;

  IF _passed = 0 THEN
    RETURN 0;
  END IF;
  IF _messages IS NOT NULL THEN
    PERFORM pgmq.send_batch(fill_queue.queue, _messages, _groups);
  END IF;
  UPDATE pgstore.handler_positions
     SET position = _last + 1, updated_at = now()
   WHERE handler_positions.handler = fill_queue.handler;
  RETURN _passed;
END;
$$;
