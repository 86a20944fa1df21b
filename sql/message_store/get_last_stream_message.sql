-- Message DB's get_last_stream_message(): zero or one row.
CREATE OR REPLACE FUNCTION message_store.get_last_stream_message(
  stream_name varchar,
  "type" varchar DEFAULT NULL
)
RETURNS SETOF message_store.message
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT
    m.id::varchar,
    m.stream_name::varchar,
    m.type::varchar,
    m.position,
    m.global_position,
    m.data::varchar,
    m.metadata::varchar,
    (m.time AT TIME ZONE 'UTC')::timestamp
  FROM pgstore.last_message(
    get_last_stream_message.stream_name,
    get_last_stream_message.type
  ) m
$$;
