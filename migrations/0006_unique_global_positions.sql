-- pgstore 0006: global positions are unique, and findable by range.
--
-- A message's global position is ((transaction id + offset) << 16) + its ordinal in
-- that transaction's range. The append function finds the next free ordinal of a
-- range on this index (the caller can no longer influence it), and the index makes
-- two messages with one position impossible, whatever reaches the table.
CREATE UNIQUE INDEX message_ids_global_position ON pgstore.message_ids (global_position);
