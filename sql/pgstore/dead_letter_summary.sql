-- A handler's dead letters: how many, and the error and time of the latest, whether
-- they are rows of pgstore.dead_letters (event_store) or messages of its pgmq
-- dead-letter queue (stream; read only if pgstore created that table).
CREATE OR REPLACE FUNCTION pgstore.dead_letter_summary(
  handler text,
  OUT dead_letters bigint,
  OUT last_error text,
  OUT last_failed_at timestamptz
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _queue text;
  _table regclass;
BEGIN
  SELECT s.dead_letter_queue INTO _queue
    FROM pgstore.stream_subscriptions s
   WHERE s.handler = dead_letter_summary.handler;
  IF _queue IS NULL THEN
    SELECT count(*), (array_agg(d.error ORDER BY d.last_failed_at DESC))[1], max(d.last_failed_at)
      INTO dead_letters, last_error, last_failed_at
      FROM pgstore.dead_letters d
     WHERE d.handler = dead_letter_summary.handler;
    RETURN;
  END IF;
  dead_letters := 0;
  _table := pgstore.queue_table(_queue);
  IF _table IS NULL THEN
    RETURN;
  END IF;
  EXECUTE format(
    'SELECT count(*), (array_agg(message->>''error'' ORDER BY msg_id DESC))[1],'
    ' max((message->>''last_failed_at'')::timestamptz) FROM %s', _table)
    INTO dead_letters, last_error, last_failed_at;
END;
$$;
