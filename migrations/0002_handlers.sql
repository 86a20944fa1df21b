-- pgstore 0002: state-stored aggregates, handler positions, durable retry counts, dead letters.

-- State-stored aggregates: one JSONB row per aggregate, with a version for
-- optimistic concurrency. Event-sourced aggregates live in their streams instead.
CREATE TABLE pgstore.aggregates (
    category text NOT NULL,
    id text NOT NULL,
    version bigint NOT NULL,
    data jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (category, id)
);
-- find_by(field=value) is a containment query on data.
CREATE INDEX aggregates_data ON pgstore.aggregates USING gin (data jsonb_path_ops);

-- Where each event-store subscription has got to: the next global position it will
-- read. Written in the same transaction as the handler's effects, and only forward.
CREATE TABLE pgstore.handler_positions (
    handler text PRIMARY KEY,
    category text NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Failed attempts per (handler, message), so retries survive a restart.
CREATE TABLE pgstore.handler_failures (
    handler text NOT NULL,
    message_id uuid NOT NULL,
    attempts int NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at timestamptz NOT NULL DEFAULT now(),
    last_error text NOT NULL,
    PRIMARY KEY (handler, message_id)
);

-- Messages a handler gave up on after its last attempt; each handler has its own.
CREATE TABLE pgstore.dead_letters (
    handler text NOT NULL,
    message_id uuid NOT NULL,
    global_position bigint NOT NULL,
    stream_name text NOT NULL,
    type text NOT NULL,
    data jsonb,
    metadata jsonb,
    error text NOT NULL,
    traceback text NOT NULL,
    attempts int NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at timestamptz NOT NULL,
    dead_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, message_id)
);
