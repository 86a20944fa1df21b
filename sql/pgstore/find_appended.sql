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
    SELECT mi.id, mi.position, mi.global_position, mi.stream_name
      FROM pgstore.message_ids mi
     WHERE mi.id = ANY (find_appended.ids)
  )
  SELECT f.id, f.position, f.global_position
    FROM found f
   WHERE (SELECT count(*) FROM found g WHERE g.stream_name = find_appended.stream_name)
         = cardinality(find_appended.ids)
   ORDER BY f.position
$$;
