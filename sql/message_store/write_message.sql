-- Message DB's write_message(), appending through pgstore.append_messages.
-- Returns the new message's stream position. Errors answer as Message DB's do:
-- a wrong expected version raises P0001 with Message DB's text, a duplicate id a
-- unique_violation.
CREATE OR REPLACE FUNCTION message_store.write_message(
  id varchar,
  stream_name varchar,
  "type" varchar,
  data jsonb,
  metadata jsonb DEFAULT NULL,
  expected_version bigint DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _position bigint;
BEGIN
  SELECT a.position
    INTO _position
    FROM pgstore.append_messages(
      write_message.stream_name,
      ARRAY[write_message.id::uuid],
      ARRAY[write_message.type::text],
      ARRAY[write_message.data],
      ARRAY[write_message.metadata],
      write_message.expected_version
    ) a;
  RETURN _position;
EXCEPTION
  WHEN SQLSTATE 'PS001' THEN
    RAISE EXCEPTION '%', SQLERRM;
  WHEN SQLSTATE 'PS003' THEN
    RAISE EXCEPTION '%', SQLERRM USING ERRCODE = 'unique_violation';
END;
$$;
