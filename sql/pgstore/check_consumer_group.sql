-- Raises unless member and size are both NULL or form a valid consumer group
-- (size >= 1, 0 <= member < size). The texts are Message DB's, which its clients
-- match on; the SQLSTATE is invalid_argument (PS008).
CREATE OR REPLACE FUNCTION pgstore.check_consumer_group(
  member bigint,
  size bigint
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _problem text;
BEGIN
  IF (check_consumer_group.member IS NULL) <> (check_consumer_group.size IS NULL) THEN
    _problem := 'Consumer group member and size must be specified';
  ELSIF check_consumer_group.size IS NULL THEN
    RETURN;
  ELSIF check_consumer_group.size < 1 THEN
    _problem := 'Consumer group size must not be less than 1';
  ELSIF check_consumer_group.member < 0 THEN
    _problem := 'Consumer group member must not be less than 0';
  ELSIF check_consumer_group.member >= check_consumer_group.size THEN
    _problem := 'Consumer group member must be less than the group size';
  END IF;

  IF _problem IS NOT NULL THEN
    RAISE EXCEPTION '% (Consumer Group Member: %, Consumer Group Size: %)',
        _problem, check_consumer_group.member, check_consumer_group.size
      USING ERRCODE = 'PS008';
  END IF;
END;
$$;
