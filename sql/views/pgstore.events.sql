-- Every message with its metadata decoded, for querying in psql:
--   SELECT stream_name, type, data FROM pgstore.events WHERE category = 'order';
-- Filtering on category prunes to one partition of pgstore.messages.
CREATE OR REPLACE VIEW pgstore.events AS
SELECT
  m.global_position,
  m.stream_name,
  m.category,
  m.position,
  m.type,
  m.data,
  m.metadata,
  m.time,
  m.id,
  m.metadata->>'correlation_id' AS correlation_id,
  m.metadata->>'causation_id' AS causation_id,
  m.metadata->>'origin_stream' AS origin_stream,
  (m.metadata->>'schema_version')::int AS schema_version,
  (m.global_position >> 16) - pgstore.xid_offset() AS transaction_id
FROM pgstore.messages m;
