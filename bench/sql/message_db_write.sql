-- A like-for-like of Message DB 1.3.0's write path, for bench/append.py's in-run
-- baseline (written from the facts in ../shared/reference/message-db.md, not copied):
-- one unpartitioned table with its primary key and three more indexes, an advisory
-- lock per category held to commit, max(position) of the stream under it, the
-- expected-version check, one INSERT, no NOTIFY. Installed in the scratch database only.
CREATE SCHEMA IF NOT EXISTS bench_mdb;

CREATE OR REPLACE FUNCTION bench_mdb.category(stream_name varchar) RETURNS varchar
LANGUAGE sql IMMUTABLE AS $$ SELECT split_part(stream_name, '-', 1) $$;

CREATE OR REPLACE FUNCTION bench_mdb.hash_64(value varchar) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT left('x' || md5(value), 17)::bit(64)::bigint $$;

CREATE TABLE IF NOT EXISTS bench_mdb.messages (
    global_position bigserial PRIMARY KEY,
    position bigint NOT NULL,
    time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    stream_name text NOT NULL,
    type text NOT NULL,
    data jsonb,
    metadata jsonb,
    id uuid NOT NULL DEFAULT gen_random_uuid()
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON bench_mdb.messages (id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_stream ON bench_mdb.messages (stream_name, position);
CREATE INDEX IF NOT EXISTS messages_category ON bench_mdb.messages (
    bench_mdb.category(stream_name), global_position,
    bench_mdb.category(metadata->>'correlationStreamName')
);

CREATE OR REPLACE FUNCTION bench_mdb.write_message(
    id varchar, stream_name varchar, "type" varchar, data jsonb,
    metadata jsonb DEFAULT NULL, expected_version bigint DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    current_version bigint;
    next_position bigint;
BEGIN
    -- Serialises the category's writers to commit, as Message DB does.
    PERFORM pg_advisory_xact_lock(bench_mdb.hash_64(bench_mdb.category(write_message.stream_name)));
    SELECT max(m.position) INTO current_version
      FROM bench_mdb.messages m WHERE m.stream_name = write_message.stream_name;
    IF expected_version IS NOT NULL
       AND expected_version IS DISTINCT FROM coalesce(current_version, -1) THEN
        RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
            expected_version, write_message.stream_name, current_version;
    END IF;
    next_position := coalesce(current_version, -1) + 1;
    INSERT INTO bench_mdb.messages (id, stream_name, position, type, data, metadata)
    VALUES (write_message.id::uuid, write_message.stream_name, next_position,
            write_message.type, write_message.data, write_message.metadata);
    RETURN next_position;
END;
$$;
