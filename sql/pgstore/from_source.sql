-- Whether a message raised while handling a message of `origin_stream` passes a
-- handler's `source_stream`: NULL lets everything through; a stream name matches that
-- stream; a category (no '-') matches each of its streams and of its command streams
-- (`<category>:command-<id>`: what a command caused). The rule
-- pgstore.handlers.HandlerSpec.accepts_origin follows in Python (a test holds the two
-- equal).
CREATE OR REPLACE FUNCTION pgstore.from_source(
  origin_stream text,
  source_stream text
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT from_source.source_stream IS NULL
      OR coalesce(
           CASE WHEN strpos(from_source.source_stream, '-') = 0
                THEN split_part(from_source.origin_stream, '-', 1)
                     IN (from_source.source_stream, from_source.source_stream || ':command')
                ELSE from_source.origin_stream = from_source.source_stream
           END,
           false)
$$;
