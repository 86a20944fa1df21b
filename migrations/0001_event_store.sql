-- pgstore 0001: the event store's tables (functions live in sql/ and are re-applied by every migrate).

CREATE SCHEMA IF NOT EXISTS pgstore;

-- Every event, partitioned by HASH of its category.
--
-- Why category: both hot reads are keyed by it. A stream read knows its category
-- (the part of the stream name before the first '-'), a category read names it, so
-- each prunes to one partition. Why HASH rather than LIST: a LIST partition per
-- category would need DDL (and a lock on the parent) the first time a category is
-- written; a fixed set of hash partitions takes any new category with no DDL and
-- no downtime.
--
-- global_position encodes the writer's transaction: (xid8 << 16) + the message's
-- ordinal within that transaction. Ordering by it is ordering by (transaction id,
-- ordinal), which is what lets readers stop below the oldest running transaction
-- and never skip a late commit (see sql/pgstore/global_position_horizon.sql).
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

-- Message ids are unique across the whole store. A unique index on a partitioned
-- table must contain the partition key, so it could only enforce uniqueness per
-- category; this narrow table enforces it globally and answers "where is message X"
-- for idempotent re-appends.
CREATE TABLE pgstore.message_ids (
    id uuid PRIMARY KEY,
    stream_name text NOT NULL,
    position bigint NOT NULL,
    global_position bigint NOT NULL
);

-- One row per appended message, as the append functions return it.
CREATE TYPE pgstore.appended AS (
    id uuid,
    position bigint,
    global_position bigint
);

-- Message DB's result row, exactly (see the message_store functions).
CREATE SCHEMA IF NOT EXISTS message_store;

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
