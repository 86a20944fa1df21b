-- Raises invalid_name (PS002) unless `value` is a usable stream name, category or
-- message type; `kind` says which, and decides the rules:
--   'stream'   <category>-<id>, both parts non-empty
--   'category' no '-'
--   'type'     any text (a message type)
--   'handler'  any text (a handler's name)
-- All three must be non-empty, at most 500 characters and 1,000 bytes (UTF-8), and
-- free of control characters (the byte limit keeps index rows below PostgreSQL's).
CREATE OR REPLACE FUNCTION pgstore.check_name(
  kind text,
  value text
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _label text := CASE check_name.kind
    WHEN 'stream' THEN 'stream name'
    WHEN 'category' THEN 'category'
    WHEN 'handler' THEN 'handler name'
    ELSE 'message type'
  END;
  _problem text;
BEGIN
  IF check_name.value IS NULL OR check_name.value = '' THEN
    _problem := 'must not be empty';
  ELSIF length(check_name.value) > 500 THEN
    _problem := format('must be at most 500 characters, not %s', length(check_name.value));
  ELSIF octet_length(check_name.value) > 1000 THEN
    _problem := format('must be at most 1000 bytes, not %s', octet_length(check_name.value));
  ELSIF check_name.value ~ '[[:cntrl:]]' THEN
    _problem := 'must not contain control characters';
  ELSIF check_name.kind = 'stream' AND strpos(check_name.value, '-') = 0 THEN
    _problem := 'must be <category>-<id> (this is a category)';
  ELSIF check_name.kind = 'stream' AND (
      split_part(check_name.value, '-', 1) = ''
      OR substring(check_name.value FROM strpos(check_name.value, '-') + 1) = '') THEN
    _problem := 'must be <category>-<id> with a non-empty category and id';
  ELSIF check_name.kind = 'category' AND strpos(check_name.value, '-') > 0 THEN
    _problem := 'must not contain ''-'' (this is a stream name)';
  END IF;

  IF _problem IS NOT NULL THEN
    RAISE EXCEPTION 'Invalid %: % (%: %)',
        _label, _problem, initcap(_label), coalesce(quote_literal(check_name.value), 'NULL')
      USING ERRCODE = 'PS002';
  END IF;
END;
$$;
