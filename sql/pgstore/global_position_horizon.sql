-- The first global position that a reader may not pass yet.
--
-- A global position is ((writer's xid8 + xid_offset()) << 16) + ordinal. Every transaction whose
-- xid is below pg_snapshot_xmin(pg_current_snapshot()) has finished, and every
-- transaction that has not finished (or has not yet written) has, or will get, an
-- xid at or above it. So rows below this horizon are final: no transaction can
-- commit a row below it later. A reader that returns only rows below the horizon
-- and advances to the last one it saw never skips an event that commits late, with
-- no lock shared by writers and no timeout. The price: one long-running writing
-- transaction anywhere in the cluster holds the horizon (and every reader) back.
CREATE OR REPLACE FUNCTION pgstore.global_position_horizon()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
  SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint + pgstore.xid_offset()) << 16
$$;
