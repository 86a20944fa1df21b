-- The next messages a stream handler's feeder queues: up to `room` messages of the
-- category from `from_global_position` through the gap-safe read_category, as queue
-- bodies (the keys of pgstore.messages.Message.to_dict()) with their FIFO group
-- headers, only those the handler runs (`types`, NULL: all; `source_stream`, see
-- pgstore.from_source). `passed` counts every message read and `last` is the global
-- position of the last: the feeder's position moves past them all.
--
-- Read-only, so it runs on a hot standby too: `pgstore dispatch --read-dsn` reads
-- there and sends and moves the position on the primary (see fill_queue.sql for the
-- primary's own path, which calls it).
CREATE OR REPLACE FUNCTION pgstore.feed_batch(
  category text,
  from_global_position bigint,
  room bigint,
  types text[] DEFAULT NULL,
  source_stream text DEFAULT NULL,
  OUT passed int,
  OUT last bigint,
  OUT messages jsonb[],
  OUT groups jsonb[]
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT
    count(*)::int,
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
  FROM (
    SELECT r.*,
           (feed_batch.types IS NULL OR r.type = ANY (feed_batch.types))
           AND pgstore.from_source(r.metadata->>'origin_stream', feed_batch.source_stream)
             AS wanted
      FROM pgstore.read_category(feed_batch.category, feed_batch.from_global_position,
                                 feed_batch.room) r
  ) m
$$;
