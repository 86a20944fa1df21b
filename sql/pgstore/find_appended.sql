-- The earlier append of exactly these message ids to this stream, if there was one:
-- every id present, all in `stream_name`. Anything less returns no rows.
CREATE OR REPLACE FUNCTION pgstore.find_appended(
  stream_name text,
  ids uuid[]
)
RETURNS SETOF pgstore.appended
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH found AS (
    SELECT mi.id, mi.global_position, mi.stream_name
      FROM pgstore.message_ids mi
     WHERE mi.id = ANY (find_appended.ids)
  )
  SELECT f.id, m.position, f.global_position
    FROM found f
    JOIN pgstore.messages m
      ON m.category = split_part(find_appended.stream_name, '-', 1)
     AND m.global_position = f.global_position
   WHERE (SELECT count(*) FROM found g WHERE g.stream_name = find_appended.stream_name)
         = cardinality(find_appended.ids)
   ORDER BY m.position
$$;
