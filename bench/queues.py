"""pgstore's queue delivery (feed, grouped read, handle, delete) against raw pgmq.

python bench/queues.py [--quick]
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from common import Report, arguments, scratch_database, server_version
from psycopg.types.json import Jsonb

from pgstore import Domain, handle
from pgstore.dispatch import Dispatcher
from pgstore.messages import NewMessage
from pgstore.store import EventStore

BATCH = 100


def raw_pgmq(conninfo: str, messages: int) -> float:
    """Send in batches, then read, and delete what was read: pgmq with nothing around it."""
    body = {"id": "x", "stream_name": "q-1", "type": "T", "data": {"n": 1, "note": "x" * 80}}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pgmq.create('bench_raw')")
        started = time.perf_counter()
        for _ in range(0, messages, BATCH):
            conn.execute(
                "SELECT pgmq.send_batch('bench_raw', %s::jsonb[], %s::jsonb[])",
                ([Jsonb(body)] * BATCH, [Jsonb({"x-pgmq-group": "q-1"})] * BATCH),
            )
        received = 0
        while received < messages:
            with conn.transaction():
                rows = conn.execute(
                    "SELECT msg_id FROM pgmq.read('bench_raw', 30, %s)", (BATCH,)
                ).fetchall()
                conn.execute(
                    "SELECT pgmq.delete('bench_raw', %s::bigint[])", ([r[0] for r in rows],)
                )
            received += len(rows)
        return messages / (time.perf_counter() - started)


def pgstore_queue(conninfo: str, messages: int) -> float:
    """The same number of events through a stream handler that does nothing."""
    domain = Domain(
        "qbench",
        dsn=conninfo,
        config={"subscription": {"subscription_type": "stream", "messages_per_tick": BATCH}},
    )

    handled = [0]

    @domain.event_handler(stream_category="q")
    class Nothing:
        @handle("$any")
        def anything(self, event: Any) -> None:
            handled[0] += 1

    with EventStore.connect(conninfo) as store:
        for start in range(0, messages, BATCH):
            batch = [NewMessage("T", {"n": n, "note": "x" * 80}) for n in range(BATCH)]
            store.append(f"q-{start // BATCH % 20}", batch)
    started = time.perf_counter()
    Dispatcher(domain, once=True).run()
    elapsed = time.perf_counter() - started
    domain.close()
    assert handled[0] == messages, (handled[0], messages)
    return messages / elapsed


def main() -> None:
    args = arguments(__doc__ or "")
    messages = 5000 if args.quick else 50_000
    report = Report("queues", args.quick)
    with scratch_database(args.dsn, "queues") as conninfo:
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {messages} messages, batches of {BATCH}"
        )
        raw = raw_pgmq(conninfo, messages)
        ours = pgstore_queue(conninfo, messages)
        report.add(
            test="deliver and delete",
            raw_pgmq_per_s=round(raw),
            pgstore_per_s=round(ours),
            ratio=round(ours / raw, 2),
        )
        report.notes.append(
            "pgstore's figure includes copying each event from the store into the queue "
            "(the feeder), the grouped FIFO read, a row lock, a savepoint and the handler call"
        )
    report.finish(args.output)


if __name__ == "__main__":
    main()
