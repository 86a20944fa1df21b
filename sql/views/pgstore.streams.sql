-- One row per stream: its version (last position), size and first and last times.
CREATE OR REPLACE VIEW pgstore.streams AS
SELECT
  m.stream_name,
  m.category,
  max(m.position) AS version,
  count(*) AS message_count,
  min(m.time) AS first_time,
  max(m.time) AS last_time,
  max(m.global_position) AS last_global_position
FROM pgstore.messages m
GROUP BY m.category, m.stream_name;
