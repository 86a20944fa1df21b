-- Message DB's messages table, as a view for clients that query it directly (for
-- example Protean's $all reads and snapshot lookups, which name it unqualified).
-- Bounded by the global position horizon like every pgstore global read, so a
-- client that pages through it by global_position never skips a late commit.
CREATE OR REPLACE VIEW message_store.messages AS
SELECT
  m.id,
  m.stream_name,
  m.type,
  m.position,
  m.global_position,
  m.data,
  m.metadata,
  (m.time AT TIME ZONE 'UTC')::timestamp AS time
FROM pgstore.messages m
WHERE m.global_position < pgstore.global_position_horizon();
