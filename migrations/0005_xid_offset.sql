-- pgstore 0005: an offset added to transaction ids in global positions.
--
-- Global positions are (xid8 + offset) << 16 + ordinal. The offset is 0 until a store
-- is copied logically (pg_dump/pg_restore) into a new cluster, whose transaction ids
-- start lower: `pgstore rebase` then raises it so that new positions land above the
-- copied ones. It lives here, not in sql/, because `pgstore migrate` re-applies sql/
-- on every run and must not reset it; `pgstore rebase` replaces the function. As a
-- constant SQL function it is inlined into every caller: it costs nothing per append.
CREATE OR REPLACE FUNCTION pgstore.xid_offset()
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
  SELECT 0::bigint
$$;
