-- pgstore 0003: stream subscriptions on pgmq queues; replays of dead letters.

-- One row per stream-type handler: its category and its pgmq queues. The handler's
-- feeder position (how far the category has been copied into the queue) is its row
-- in pgstore.handler_positions.
CREATE TABLE pgstore.stream_subscriptions (
    handler text PRIMARY KEY,
    category text NOT NULL,
    queue text NOT NULL UNIQUE,
    dead_letter_queue text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- `pgstore dlq replay` on an event_store handler marks its dead letters; the
-- dispatcher runs that handler on them again before its next batch.
ALTER TABLE pgstore.dead_letters ADD COLUMN replay_requested_at timestamptz;
