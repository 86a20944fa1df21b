-- One row per handler the dispatcher has run: where it is, how far behind (in events
-- and in seconds), its queue depth (stream subscriptions), dead letters, last error.
--
-- lag_events counts the category's messages at or after the handler's position that
-- readers may see (below the global position horizon); for a stream handler it adds
-- the messages waiting in its queue. lag_seconds is the age of the oldest of those.
-- waiting_events counts the committed messages it cannot see yet because a
-- transaction holds the horizon back, and waiting_seconds is how long the oldest of
-- them has waited: a stall shows there, not in lag. last_error is the latest of a
-- failure being retried and a dead letter. conflicts counts the races re-run at once;
-- failing, the messages whose failures are being retried now. For a handler whose
-- category is split into partitions, position is the lowest partition's and lag counts
-- each partition's share from its own position.
CREATE OR REPLACE VIEW pgstore.handlers AS
SELECT
  p.handler,
  CASE WHEN s.handler IS NULL THEN 'event_store' ELSE 'stream' END AS subscription_type,
  p.category,
  coalesce(parts.position, p.position) AS position,
  backlog.events + coalesce(queue.depth, 0) AS lag_events,
  coalesce(
    extract(epoch FROM now() - least(backlog.oldest, queue.oldest)),
    0
  )::double precision AS lag_seconds,
  queue.depth AS queue_depth,
  s.queue,
  dead.dead_letters,
  failure.last_error,
  failure.last_failed_at,
  p.updated_at,
  waiting.events AS waiting_events,
  coalesce(extract(epoch FROM now() - waiting.oldest), 0)::double precision AS waiting_seconds,
  p.conflicts,
  (SELECT count(*) FROM pgstore.handler_failures f WHERE f.handler = p.handler) AS failing,
  coalesce(parts.partitions, 1) AS partitions
FROM pgstore.handler_positions p
LEFT JOIN pgstore.stream_subscriptions s ON s.handler = p.handler
LEFT JOIN LATERAL (
  SELECT min(hp.position) AS position, max(hp.partitions) AS partitions
    FROM pgstore.handler_partitions hp
   WHERE hp.handler = p.handler
) parts ON true
CROSS JOIN LATERAL (
  SELECT count(*) AS events, min(m.time) AS oldest
    FROM pgstore.messages m
   WHERE m.category = p.category
     AND m.global_position >= coalesce(parts.position, p.position)
     AND m.global_position < pgstore.global_position_horizon()
     AND (parts.partitions IS NULL OR m.global_position >= (
           SELECT hp.position FROM pgstore.handler_partitions hp
            WHERE hp.handler = p.handler
              AND hp.partition = abs(mod(m.consumer_hash, parts.partitions))))
) backlog
CROSS JOIN LATERAL (
  SELECT count(*) AS events, min(m.time) AS oldest
    FROM pgstore.messages m
   WHERE m.category = p.category
     AND m.global_position >= greatest(coalesce(parts.position, p.position),
                                       pgstore.global_position_horizon())
) waiting
CROSS JOIN LATERAL pgstore.dead_letter_summary(p.handler) dead
LEFT JOIN LATERAL pgstore.queue_depth(s.queue) queue ON s.handler IS NOT NULL
LEFT JOIN LATERAL (
  SELECT e.last_error, e.last_failed_at
    FROM (
      SELECT f.last_error, f.last_failed_at
        FROM pgstore.handler_failures f
       WHERE f.handler = p.handler
      UNION ALL
      SELECT dead.last_error, dead.last_failed_at
       WHERE dead.last_error IS NOT NULL
    ) e
   ORDER BY e.last_failed_at DESC
   LIMIT 1
) failure ON true;
