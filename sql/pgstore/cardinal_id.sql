-- The cardinal id of a stream: its id up to the first '+' (compound ids share one).
CREATE OR REPLACE FUNCTION pgstore.cardinal_id(
  stream_name text
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT split_part(pgstore.id(cardinal_id.stream_name), '+', 1)
$$;
