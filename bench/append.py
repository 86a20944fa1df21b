"""Append throughput against a plain INSERT of the same row shape, same clients, same run.

python bench/append.py [--quick]
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from typing import Any

import psycopg
from common import Report, arguments, run_clients, scratch_database, server_version, wait_until
from psycopg import sql
from psycopg.types.json import Jsonb

# Two baselines of the same row shape, no partitions and no functions: "bare" has
# only a primary key; "indexed" also has the indexes an event store cannot do
# without (unique stream position, category order, global order).
PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain (
    global_position bigint,
    position bigint NOT NULL,
    stream_name text NOT NULL,
    category text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb,
    time timestamptz NOT NULL DEFAULT now(),
    id uuid PRIMARY KEY,
    consumer_hash bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS bench_indexed (LIKE bench_plain INCLUDING ALL);
CREATE UNIQUE INDEX IF NOT EXISTS bench_indexed_stream ON bench_indexed (stream_name, position);
CREATE INDEX IF NOT EXISTS bench_indexed_category ON bench_indexed (category, global_position);
CREATE INDEX IF NOT EXISTS bench_indexed_global ON bench_indexed (global_position);
"""
PLAIN_INSERT = (
    "INSERT INTO bench_plain (global_position, position, stream_name, category, type, data,"
    " metadata, id, consumer_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
APPEND = (
    "SELECT position FROM pgstore.append_messages(%s, ARRAY[%s]::uuid[], ARRAY[%s]::text[],"
    " ARRAY[%s]::jsonb[], ARRAY[%s]::jsonb[])"
)
APPEND_BATCH = (
    "SELECT count(*) FROM pgstore.append_messages("
    "%s, %s::uuid[], %s::text[], %s::jsonb[], %s::jsonb[])"
)
DATA = {"book_id": "1", "quantity": 10, "total_amount": 100, "note": "x" * 100}
META = {"correlation_id": "c", "causation_id": None, "schema_version": 1}


def stream_for(index: int, counter: int, categories: int) -> str:
    category = f"cat{(index + counter) % categories}" if categories > 1 else "bench"
    return f"{category}-{index}-{counter % 50}"


def append_worker(
    start_at: float, stop_at: float, index: int, conninfo: str, kind: str, categories: int
) -> int:
    count = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.prepare_threshold = 0
        wait_until(start_at)
        while time.time() < stop_at:
            stream = stream_for(index, count, categories)
            if kind in ("plain", "indexed"):
                position = index * 10_000_000 + count  # unique per client, like a real position
                conn.execute(
                    PLAIN_INSERT
                    if kind == "plain"
                    else PLAIN_INSERT.replace("bench_plain", "bench_indexed"),
                    (
                        position,
                        position,
                        stream,
                        stream.split("-")[0],
                        "Happened",
                        Jsonb(DATA),
                        Jsonb(META),
                        uuid.uuid4(),
                        0,
                    ),
                )
            else:
                conn.execute(APPEND, (stream, uuid.uuid4(), "Happened", Jsonb(DATA), Jsonb(META)))
            count += 1
    return count


def batch_worker(
    start_at: float, stop_at: float, index: int, conninfo: str, kind: str, size: int
) -> int:
    count = 0
    row = sql.SQL("(%s, %s, %s, %s, %s, %s, %s, %s, %s)")
    plain_batch = sql.SQL(
        "INSERT INTO bench_plain (global_position, position, stream_name, category, type, data,"
        " metadata, id, consumer_hash) VALUES {}"
    ).format(sql.SQL(", ").join([row] * size))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.prepare_threshold = 0
        wait_until(start_at)
        while time.time() < stop_at:
            stream = f"batch-{index}-{count}"
            ids = [uuid.uuid4() for _ in range(size)]
            if kind == "plain":
                params: list[Any] = []
                for n, message_id in enumerate(ids):
                    params += [
                        n,
                        n,
                        stream,
                        "batch",
                        "Happened",
                        Jsonb(DATA),
                        Jsonb(META),
                        message_id,
                        0,
                    ]
                conn.execute(plain_batch, params)
            else:
                conn.execute(
                    APPEND_BATCH,
                    (stream, ids, ["Happened"] * size, [Jsonb(DATA)] * size, [Jsonb(META)] * size),
                )
            count += size
    return count


def listener(conninfo: str, stop: Any) -> None:
    """What a dispatcher does while it waits: LISTEN, and drain every NOTIFY."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("LISTEN pgstore_messages")
        while not stop.is_set():
            for _ in conn.notifies(timeout=0.2):
                pass


def measure(report: Report, conninfo: str, clients: int, categories: int, seconds: float) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE bench_plain, bench_indexed")
    bare = run_clients(append_worker, clients, seconds, conninfo, "plain", categories)
    indexed = run_clients(append_worker, clients, seconds, conninfo, "indexed", categories)
    appended = run_clients(append_worker, clients, seconds, conninfo, "pgstore", categories)
    report.add(
        test="single append",
        clients=clients,
        categories="one" if categories == 1 else "many",
        bare_insert_per_s=round(bare),
        indexed_insert_per_s=round(indexed),
        pgstore_per_s=round(appended),
        ratio_bare=round(appended / bare, 2),
        ratio_indexed=round(appended / indexed, 2),
    )


def main() -> None:
    args = arguments(__doc__ or "")
    seconds = 2.0 if args.quick else 8.0
    report = Report("append", args.quick)
    with scratch_database(args.dsn, "append") as conninfo:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(PLAIN_TABLE)
        report.notes.append(f"PostgreSQL {server_version(conninfo)}, {seconds}s per measurement")
        stop = multiprocessing.get_context("spawn").Event()
        watcher = multiprocessing.get_context("spawn").Process(
            target=listener, args=(conninfo, stop)
        )
        watcher.start()
        try:
            shapes = (
                [(1, 1), (4, 1), (16, 1), (16, 100)]
                if args.quick
                else [(c, k) for c in (1, 4, 16) for k in (1, 100)]
            )
            for clients, categories in shapes:
                measure(report, conninfo, clients, categories, seconds)
            for clients in (1,) if args.quick else (1, 4):
                baseline = run_clients(batch_worker, clients, seconds, conninfo, "plain", 100)
                appended = run_clients(batch_worker, clients, seconds, conninfo, "pgstore", 100)
                report.add(
                    test="batch of 100",
                    clients=clients,
                    categories="one",
                    bare_insert_per_s=round(baseline),
                    pgstore_per_s=round(appended),
                    ratio_bare=round(appended / baseline, 2),
                )
        finally:
            stop.set()
            watcher.join(10)
    report.notes.append(
        "a LISTEN connection drained NOTIFYs throughout (the dispatcher's wake-up path)"
    )
    report.finish(args.output)


if __name__ == "__main__":
    main()
