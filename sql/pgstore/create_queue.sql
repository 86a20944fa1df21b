-- Creates (if missing) a stream handler's pgmq queue and dead-letter queue, registers
-- the subscription and its feeder position, and returns the queue names.
--
-- Runs as pgstore's owner so that dispatchers need no CREATE on schema pgmq: a role
-- that could create objects there could put a view where a queue is expected, and
-- whoever reads it (an operator's superuser running `pgstore status`) would run that
-- view's functions. The names are computed here, never taken from the caller.
CREATE OR REPLACE FUNCTION pgstore.create_queue(
  handler text,
  category text,
  OUT queue text,
  OUT dead_letter_queue text
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  _name text;
BEGIN
  PERFORM pgstore.check_name('handler', create_queue.handler);
  PERFORM pgstore.check_name('category', create_queue.category);
  SELECT n.queue, n.dead_letter_queue INTO queue, dead_letter_queue
    FROM pgstore.queue_names(create_queue.handler) n;

  FOREACH _name IN ARRAY ARRAY[queue, dead_letter_queue] LOOP
    PERFORM pgmq.create(_name);
    -- Grants here, not only as default privileges: queues must work for the roles
    -- whatever the order in which roles and queues were created.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgstore_dispatcher') THEN
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON pgmq.%I, pgmq.%I TO pgstore_dispatcher',
                     'q_' || _name, 'a_' || _name);
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgstore_reader') THEN
      EXECUTE format('GRANT SELECT ON pgmq.%I, pgmq.%I TO pgstore_reader',
                     'q_' || _name, 'a_' || _name);
    END IF;
  END LOOP;

  INSERT INTO pgstore.stream_subscriptions (handler, category, queue, dead_letter_queue)
  VALUES (create_queue.handler, create_queue.category, queue, dead_letter_queue)
  ON CONFLICT ON CONSTRAINT stream_subscriptions_pkey DO UPDATE SET category = excluded.category;
  INSERT INTO pgstore.handler_positions (handler, category)
  VALUES (create_queue.handler, create_queue.category)
  ON CONFLICT ON CONSTRAINT handler_positions_pkey DO NOTHING;
END;
$$;
