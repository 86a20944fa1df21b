-- Raises duplicate_message_id (PS003): some of `ids` are already in the store, in
-- this or another stream, and the batch is not a repeat of one earlier append.
CREATE OR REPLACE FUNCTION pgstore.refuse_duplicate_ids(
  stream_name text,
  ids uuid[]
)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _found int;
BEGIN
  SELECT count(*) INTO _found FROM pgstore.message_ids mi WHERE mi.id = ANY (refuse_duplicate_ids.ids);
  RAISE EXCEPTION 'Duplicate message id: % of % ids were already appended, to this or another stream (Stream: %, Ids: %)',
      _found, cardinality(refuse_duplicate_ids.ids), refuse_duplicate_ids.stream_name,
      refuse_duplicate_ids.ids
    USING ERRCODE = 'PS003';
END;
$$;
