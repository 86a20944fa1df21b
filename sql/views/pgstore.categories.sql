-- One row per category: how many messages and streams, and where it ends.
CREATE OR REPLACE VIEW pgstore.categories AS
SELECT
  m.category,
  count(*) AS message_count,
  count(DISTINCT m.stream_name) AS stream_count,
  max(m.global_position) AS last_global_position,
  max(m.time) AS last_time
FROM pgstore.messages m
GROUP BY m.category;
