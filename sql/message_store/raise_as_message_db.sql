-- Raises a Message DB-style error (SQLSTATE P0001) with the given text. Message DB
-- clients build their errors from P0001 and the message's first line.
CREATE OR REPLACE FUNCTION message_store.raise_as_message_db(
  message text
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
  RAISE EXCEPTION '%', raise_as_message_db.message;
END;
$$;
