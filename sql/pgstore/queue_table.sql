-- The table of pgmq queue `queue`, if it is one pgstore may read: an ordinary table in
-- schema pgmq owned by pgstore's owner (the owner of schema pgstore) or a superuser.
-- NULL otherwise. Everything that reads a queue by a stored name goes through this
-- check first: a view (or a table with row-level policies) that a lower role put in
-- the queue's place would run its functions as whoever reads it.
CREATE OR REPLACE FUNCTION pgstore.queue_table(
  queue text
)
RETURNS regclass
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.oid::regclass
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
   WHERE n.nspname = 'pgmq'
     AND c.relname = 'q_' || queue_table.queue
     AND c.relkind IN ('r', 'p')
     AND NOT c.relrowsecurity
     AND (o.rolsuper
          OR c.relowner = (SELECT s.nspowner FROM pg_catalog.pg_namespace s
                            WHERE s.nspname = 'pgstore'))
$$;
