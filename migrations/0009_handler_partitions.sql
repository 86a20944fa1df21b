-- pgstore 0009: event_store handlers shared by several workers.

-- A handler with `partitions` N > 1 splits its category into N partitions by the
-- stored hash of each stream's cardinal id (Message DB's consumer-group split), each
-- with its own position: a worker locks one partition's row for the length of a batch,
-- so N workers run the handler at once while each stream stays in one partition, in
-- order. The handler's row in handler_positions stays (registration, conflicts).
CREATE TABLE pgstore.handler_partitions (
    handler text NOT NULL REFERENCES pgstore.handler_positions (handler) ON DELETE CASCADE,
    partition int NOT NULL,
    partitions int NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, partition),
    CHECK (partitions BETWEEN 2 AND 256 AND partition >= 0 AND partition < partitions)
);
