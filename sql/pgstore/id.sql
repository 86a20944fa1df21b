-- The id of a stream: everything after the first '-', NULL when there is none.
CREATE OR REPLACE FUNCTION pgstore.id(
  stream_name text
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN strpos(id.stream_name, '-') = 0 THEN NULL
    ELSE substring(id.stream_name FROM strpos(id.stream_name, '-') + 1)
  END
$$;
