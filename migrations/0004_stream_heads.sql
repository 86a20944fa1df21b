-- pgstore 0004: one row per stream with its version, which appends update.
--
-- The row lock taken by that update is what makes appends to one stream take turns
-- (gap-free positions, exact expected versions), and the row answers "what is the
-- stream's version" without reading the partitioned messages table: one statement
-- in place of an advisory lock and an index probe through every partition.
CREATE TABLE pgstore.stream_heads (
    stream_name text PRIMARY KEY,
    category text NOT NULL,
    version bigint NOT NULL,
    -- The global position of the stream's last message, and of the one before the
    -- last append (what that append checks the stream-order rule against).
    last_global_position bigint NOT NULL,
    previous_global_position bigint
) WITH (fillfactor = 70);  -- room for HOT updates: a stream's row changes on every append

INSERT INTO pgstore.stream_heads (stream_name, category, version, last_global_position)
SELECT stream_name, category, max(position), max(global_position)
  FROM pgstore.messages
 GROUP BY stream_name, category;

-- An append now claims its message ids before its positions (so a repeated append
-- is answered before it touches the stream), so the id table no longer holds the
-- position; the message row has it.
ALTER TABLE pgstore.message_ids DROP COLUMN position;
