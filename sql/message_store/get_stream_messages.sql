-- Message DB's get_stream_messages(): a stream's messages from `position`
-- inclusive, in position order. A non-NULL condition is refused: Message DB
-- splices it into SQL, pgstore does not.
CREATE OR REPLACE FUNCTION message_store.get_stream_messages(
  stream_name varchar,
  "position" bigint DEFAULT 0,
  batch_size bigint DEFAULT 1000,
  condition varchar DEFAULT NULL
)
RETURNS SETOF message_store.message
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF pgstore.is_category(get_stream_messages.stream_name) THEN
    PERFORM message_store.raise_as_message_db(
      format('Must be a stream name: %s', get_stream_messages.stream_name));
  END IF;
  PERFORM message_store.refuse_condition(get_stream_messages.condition);

  RETURN QUERY
  SELECT
    m.id::varchar,
    m.stream_name::varchar,
    m.type::varchar,
    m.position,
    m.global_position,
    m.data::varchar,
    m.metadata::varchar,
    (m.time AT TIME ZONE 'UTC')::timestamp
  FROM pgstore.read_stream(
    get_stream_messages.stream_name,
    get_stream_messages.position,
    get_stream_messages.batch_size
  ) m;
END;
$$;
