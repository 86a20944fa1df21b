-- A stream handler's pgmq queue and dead-letter queue: ps_<readable>_<hash>, where
-- readable is the handler name in lower-case ASCII letters and digits (other runs of
-- characters become '_'), at most 30 characters, and hash the first 8 hex digits of
-- its SHA-256: unique per handler, and within pgmq's 47-character limit.
CREATE OR REPLACE FUNCTION pgstore.queue_names(
  handler text,
  OUT queue text,
  OUT dead_letter_queue text
)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT q, q || '_dlq'
    FROM (SELECT 'ps_'
                 || left(trim(BOTH '_' FROM regexp_replace(
                      translate(queue_names.handler, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                'abcdefghijklmnopqrstuvwxyz'),
                      '[^a-z0-9]+', '_', 'g')), 30)
                 || '_' || left(encode(sha256(convert_to(queue_names.handler, 'UTF8')), 'hex'), 8)
                 AS q) names
$$;
