-- Refuses Message DB's `condition` argument: Message DB splices it into its query
-- as SQL text (an injection surface), which pgstore will not do.
CREATE OR REPLACE FUNCTION message_store.refuse_condition(
  condition varchar
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
  IF refuse_condition.condition IS NOT NULL THEN
    RAISE EXCEPTION 'Retrieval with SQL condition is not supported by pgstore (Condition: %)',
        refuse_condition.condition
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Filter the returned messages in the client, or query pgstore.messages directly.';
  END IF;
END;
$$;
