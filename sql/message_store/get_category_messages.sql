-- Message DB's get_category_messages(): a category's messages from global
-- `position` inclusive, in global order, with correlation and consumer groups.
--
-- Safe for consumers that advance by global position, without Message DB's
-- category-wide write lock: pgstore.read_category stops below the global position
-- horizon, and global positions order by writer transaction id, so a message that
-- commits later always lands above everything already returned.
CREATE OR REPLACE FUNCTION message_store.get_category_messages(
  category varchar,
  "position" bigint DEFAULT 1,
  batch_size bigint DEFAULT 1000,
  correlation varchar DEFAULT NULL,
  consumer_group_member bigint DEFAULT NULL,
  consumer_group_size bigint DEFAULT NULL,
  condition varchar DEFAULT NULL
)
RETURNS SETOF message_store.message
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT pgstore.is_category(get_category_messages.category) THEN
    PERFORM message_store.raise_as_message_db(
      format('Must be a category: %s', get_category_messages.category));
  END IF;
  IF get_category_messages.correlation IS NOT NULL
      AND NOT pgstore.is_category(get_category_messages.correlation) THEN
    PERFORM message_store.raise_as_message_db(
      format('Correlation must be a category (Correlation: %s)', get_category_messages.correlation));
  END IF;
  PERFORM message_store.refuse_condition(get_category_messages.condition);

  BEGIN
    PERFORM pgstore.check_consumer_group(
      get_category_messages.consumer_group_member, get_category_messages.consumer_group_size);
  EXCEPTION WHEN SQLSTATE 'PS008' THEN
    PERFORM message_store.raise_as_message_db(SQLERRM);
  END;

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
  FROM pgstore.read_category(
    get_category_messages.category,
    get_category_messages.position,
    get_category_messages.batch_size,
    get_category_messages.consumer_group_member,
    get_category_messages.consumer_group_size,
    get_category_messages.correlation
  ) m;
END;
$$;
