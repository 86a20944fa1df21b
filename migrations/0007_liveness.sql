-- pgstore 0007: a failing event holds back its own stream only; claims that die with
-- their worker; conflicts counted.

-- event_store handlers: messages set aside because their stream is held back by a
-- failing message. The first parked message of a stream (the one that failed) has a
-- retry time; the ones behind it wait for it (retry_at NULL). The position moves past
-- parked messages, in the same transaction that parks them, so the rest of the
-- category goes on; a crash forgets nothing.
CREATE TABLE pgstore.handler_parked (
    handler text NOT NULL,
    global_position bigint NOT NULL,
    stream_name text NOT NULL,
    category text NOT NULL,
    retry_at timestamptz,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, global_position)
);
CREATE INDEX handler_parked_stream ON pgstore.handler_parked (handler, stream_name, global_position);

-- stream handlers: which worker session has read which queue messages. A worker
-- holds an advisory lock on its token for as long as its session lives; a claim whose
-- lock nobody holds belongs to a dead worker, and its messages are released at once
-- instead of after the visibility timeout.
CREATE TABLE pgstore.queue_claims (
    queue text NOT NULL,
    token int NOT NULL,
    msg_ids bigint[] NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, token)
);

-- Version and ordering conflicts, serialization failures and deadlocks that a handler
-- met and that were re-run at once (not counted as failures).
ALTER TABLE pgstore.handler_positions ADD COLUMN conflicts bigint NOT NULL DEFAULT 0;
