-- pgstore's whole current schema, for a fresh install: what migrations/0001 to the
-- last one build, in one file to read. `pgstore migrate` applies it to a database with
-- no pgstore schema and records every migration as applied; a database an older
-- pgstore migrated gets the numbered migrations instead. A test checks that both roads
-- end at the same catalog. Functions and views live in sql/pgstore, sql/message_store
-- and sql/views, and are (re)applied by every migrate.

CREATE SCHEMA IF NOT EXISTS pgstore;
CREATE SCHEMA IF NOT EXISTS message_store;

-- Every event, partitioned by HASH of its category.
--
-- Why category: both hot reads are keyed by it. A stream read knows its category
-- (the part of the stream name before the first '-'), a category read names it, so
-- each prunes to one partition. Why HASH rather than LIST: a LIST partition per
-- category would need DDL (and a lock on the parent) the first time a category is
-- written; a fixed set of hash partitions takes any new category with no DDL.
--
-- global_position = ((writer's xid8 + xid_offset()) << 16) + an ordinal in that
-- transaction's range: readers stop below the oldest running transaction and never
-- skip a late commit (see sql/pgstore/global_position_horizon.sql).
CREATE TABLE pgstore.messages (
    global_position bigint NOT NULL,
    position bigint NOT NULL,
    stream_name text NOT NULL,
    category text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb,
    time timestamptz NOT NULL DEFAULT now(),
    id uuid NOT NULL,
    -- hash_64(cardinal_id(stream_name)), stored once at append so consumer-group
    -- reads filter on a column instead of calling a function per row.
    consumer_hash bigint NOT NULL
) PARTITION BY HASH (category);
CREATE TABLE pgstore.messages_p00 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE pgstore.messages_p01 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE pgstore.messages_p02 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE pgstore.messages_p03 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE pgstore.messages_p04 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE pgstore.messages_p05 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE pgstore.messages_p06 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE pgstore.messages_p07 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE pgstore.messages_p08 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE pgstore.messages_p09 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE pgstore.messages_p10 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE pgstore.messages_p11 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE pgstore.messages_p12 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE pgstore.messages_p13 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE pgstore.messages_p14 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE pgstore.messages_p15 PARTITION OF pgstore.messages FOR VALUES WITH (MODULUS 16, REMAINDER 15);

-- Gap-free positions per stream; also the stream-read index.
CREATE UNIQUE INDEX messages_stream_position ON pgstore.messages (category, stream_name, position);
-- Category reads in global order.
CREATE INDEX messages_category_global_position ON pgstore.messages (category, global_position);
-- $all reads in global order (a merge of the partitions' indexes).
CREATE INDEX messages_global_position ON pgstore.messages (global_position);

-- Message ids are unique across the whole store (a unique index on the partitioned
-- table could only make them unique per category), and so are global positions: the
-- append finds a transaction's next free ordinal on this table's position index.
CREATE TABLE pgstore.message_ids (
    id uuid PRIMARY KEY,
    stream_name text NOT NULL,
    global_position bigint NOT NULL
);
CREATE UNIQUE INDEX message_ids_global_position ON pgstore.message_ids (global_position);

-- One row per stream with its version. The row lock an append's upsert takes makes a
-- stream's appends take turns until commit (gap-free positions, exact expected
-- versions); only pgstore's functions can write it.
CREATE TABLE pgstore.stream_heads (
    stream_name text PRIMARY KEY,
    category text NOT NULL,
    version bigint NOT NULL,
    -- The global position of the stream's last message, and of the one before the
    -- last append.
    last_global_position bigint NOT NULL,
    previous_global_position bigint
) WITH (fillfactor = 70);  -- room for HOT updates: a stream's row changes on every append

-- One row per appended message, as the append functions return it.
CREATE TYPE pgstore.appended AS (
    id uuid,
    position bigint,
    global_position bigint
);

-- Message DB's result row, exactly (see the message_store functions).
CREATE TYPE message_store.message AS (
    id varchar,
    stream_name varchar,
    type varchar,
    position bigint,
    global_position bigint,
    data varchar,
    metadata varchar,
    time timestamp
);

-- An offset added to transaction ids in global positions: 0 until a logical copy
-- into a new cluster, when `pgstore rebase` raises it (and replaces this function).
-- Here, not in sql/, because migrate re-applies sql/ and must not reset it.
CREATE OR REPLACE FUNCTION pgstore.xid_offset()
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT 0::bigint
$$;

-- State-stored aggregates: one JSONB row per aggregate, with a version for
-- optimistic concurrency. Event-sourced aggregates live in their streams instead.
-- Keyed by domain too: two domains that each declare `Inventory` keep separate rows
-- (rows from before pgstore 0008 have domain '' and are readable by every domain).
CREATE TABLE pgstore.aggregates (
    category text NOT NULL,
    id text NOT NULL,
    version bigint NOT NULL,
    data jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    domain text NOT NULL DEFAULT '',
    PRIMARY KEY (domain, category, id)
);
-- find_by(field=value) is a containment query on data.
CREATE INDEX aggregates_data ON pgstore.aggregates USING gin (data jsonb_path_ops);

-- Where each handler has got to: the next global position it will read (a stream
-- handler's feeder position). Written in the same transaction as the handler's
-- effects, and only forward.
CREATE TABLE pgstore.handler_positions (
    handler text PRIMARY KEY,
    category text NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Races (conflicts) the handler met and ran again at once.
    conflicts bigint NOT NULL DEFAULT 0
);

-- event_store handlers with `partitions` N > 1: a position per partition of the
-- category (streams split by their stored consumer hash), each locked by the worker
-- running a batch of it, so N workers share the handler and each stream stays in order.
CREATE TABLE pgstore.handler_partitions (
    handler text NOT NULL REFERENCES pgstore.handler_positions (handler) ON DELETE CASCADE,
    partition int NOT NULL,
    partitions int NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, partition),
    CHECK (partitions BETWEEN 2 AND 256 AND partition >= 0 AND partition < partitions)
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

-- Messages an event_store handler gave up on after its last attempt; each handler
-- has its own. `pgstore dlq replay` marks them; the dispatcher runs them again.
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
    replay_requested_at timestamptz,
    PRIMARY KEY (handler, message_id)
);

-- event_store handlers: messages set aside because their stream is held back by a
-- failing message (the first, with its retry time; the ones behind it, NULL). The
-- position moves past them in the same transaction that parks them.
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

-- stream handlers: their pgmq queues (created by pgstore.create_queue).
CREATE TABLE pgstore.stream_subscriptions (
    handler text PRIMARY KEY,
    category text NOT NULL,
    queue text NOT NULL UNIQUE,
    dead_letter_queue text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- stream handlers: which worker session read which queue messages (see
-- sql/pgstore/release_dead_claims.sql).
CREATE TABLE pgstore.queue_claims (
    queue text NOT NULL,
    token int NOT NULL,
    msg_ids bigint[] NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, token)
);

-- Results of commands run at once with an idempotency key (see pgstore/commands.py).
CREATE TABLE pgstore.command_results (
    id uuid PRIMARY KEY,
    domain text NOT NULL,
    type text NOT NULL,
    result jsonb,
    handled_at timestamptz NOT NULL DEFAULT now()
);
