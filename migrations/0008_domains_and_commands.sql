-- pgstore 0008: state-stored aggregates belong to their domain; results of commands.

-- Two domains in one database that each declare `Inventory` keep separate rows. Rows
-- written before this migration have domain '' and stay readable by every domain
-- (claim them with UPDATE pgstore.aggregates SET domain = '<name>' WHERE domain = '').
ALTER TABLE pgstore.aggregates ADD COLUMN domain text NOT NULL DEFAULT '';
ALTER TABLE pgstore.aggregates DROP CONSTRAINT aggregates_pkey;
ALTER TABLE pgstore.aggregates ADD PRIMARY KEY (domain, category, id);

-- `domain.process(command, idempotency_key=...)` run at once: the handler's result,
-- recorded in the same transaction as its effects, so a repeat of the key returns it.
CREATE TABLE pgstore.command_results (
    id uuid PRIMARY KEY,
    domain text NOT NULL,
    type text NOT NULL,
    result jsonb,
    handled_at timestamptz NOT NULL DEFAULT now()
);
