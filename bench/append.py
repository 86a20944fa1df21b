"""Append throughput against a plain INSERT of the same row shape and against Message DB's
write path (bench/sql/message_db_write.sql), same clients, same run.

python bench/append.py [--quick]
"""

from __future__ import annotations

import statistics
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from common import (
    ClientPool,
    Report,
    arguments,
    compare,
    draining_notifies,
    interleaved,
    median_ratio,
    scratch_database,
    server_version,
)
from psycopg import sql
from psycopg.types.json import Jsonb

from pgstore.messages import NewMessage
from pgstore.store import EventStore

# Two baselines of the same row shape (copied from pgstore.messages), no partitions
# and no functions: "bare" has only a primary key; "indexed" also has the indexes an
# event store cannot do without (unique stream position, category order, global
# order). A third, "table", is the same INSERT straight into pgstore.messages
# (partitions and indexes, no function, no id or version bookkeeping): the floor
# under any append function.
PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain (LIKE pgstore.messages INCLUDING DEFAULTS, PRIMARY KEY (id));
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
# Message DB's write, rebuilt in the scratch database; and pgstore's own Message DB
# surface, the same call a Message DB client makes.
MESSAGE_DB_WRITE = "SELECT bench_mdb.write_message(%s, %s, %s, %s, %s)"
PGSTORE_WRITE = "SELECT message_store.write_message(%s, %s, %s, %s, %s)"
MESSAGE_DB_SQL = Path(__file__).resolve().parent / "sql" / "message_db_write.sql"
BATCH = 100
DATA = {"book_id": "1", "quantity": 10, "total_amount": 100, "note": "x" * 100}
META = {"correlation_id": "c", "causation_id": None, "schema_version": 1}


def stream_for(index: int, counter: int, categories: int) -> str:
    category = f"cat{(index + counter) % categories}" if categories > 1 else "bench"
    return f"{category}-{index}-{counter % 50}"


def plain_insert(
    table: str, categories: int, conn: psycopg.Connection[Any], index: int, count: int
) -> int:
    stream = stream_for(index, count, categories)
    position = index * 10_000_000 + count  # unique per client, like a real position
    conn.execute(
        PLAIN_INSERT.replace("bench_plain", table),
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
    return 1


def append_one(categories: int, conn: psycopg.Connection[Any], index: int, count: int) -> int:
    stream = stream_for(index, count, categories)
    conn.execute(APPEND, (stream, uuid.uuid4(), "Happened", Jsonb(DATA), Jsonb(META)))
    return 1


def write_message(
    statement: str, categories: int, conn: psycopg.Connection[Any], index: int, count: int
) -> int:
    stream = stream_for(index, count, categories)
    conn.execute(statement, (str(uuid.uuid4()), stream, "Happened", Jsonb(DATA), Jsonb(META)))
    return 1


PLAIN_BATCH = sql.SQL(
    "INSERT INTO bench_plain (global_position, position, stream_name, category, type, data,"
    " metadata, id, consumer_hash) VALUES {}"
).format(sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s, %s, %s, %s, %s, %s)")] * BATCH))


def plain_batch(conn: psycopg.Connection[Any], index: int, count: int) -> int:
    stream = f"batch-{index}-{count}"
    params: list[Any] = []
    for n in range(BATCH):
        params += [n, n, stream, "batch", "Happened", Jsonb(DATA), Jsonb(META), uuid.uuid4(), 0]
    conn.execute(PLAIN_BATCH, params)
    return BATCH


def append_batch(conn: psycopg.Connection[Any], index: int, count: int) -> int:
    stream = f"batch-{index}-{count}"
    ids = [uuid.uuid4() for _ in range(BATCH)]
    conn.execute(
        APPEND_BATCH,
        (stream, ids, ["Happened"] * BATCH, [Jsonb(DATA)] * BATCH, [Jsonb(META)] * BATCH),
    )
    return BATCH


def measure(
    report: Report, conninfo: str, clients: int, categories: int, rounds: int, seconds: float
) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Positions restart with the pool.
        conn.execute(
            "TRUNCATE bench_plain, bench_indexed, bench_mdb.messages,"
            " pgstore.messages, pgstore.message_ids, pgstore.stream_heads"
        )
    with ClientPool(conninfo, clients) as pool:
        rates = compare(
            pool,
            {
                "bare": partial(plain_insert, "bench_plain", categories),
                "indexed": partial(plain_insert, "bench_indexed", categories),
                "table": partial(plain_insert, "pgstore.messages", categories),
                "pgstore": partial(append_one, categories),
                "message_db": partial(write_message, MESSAGE_DB_WRITE, categories),
                "pgstore_write_message": partial(write_message, PGSTORE_WRITE, categories),
            },
            rounds,
            seconds,
        )
    report.add(
        test="single append",
        clients=clients,
        categories=categories,
        bare_insert_per_s=round(statistics.median(rates["bare"])),
        indexed_insert_per_s=round(statistics.median(rates["indexed"])),
        table_insert_per_s=round(statistics.median(rates["table"])),
        pgstore_per_s=round(statistics.median(rates["pgstore"])),
        message_db_per_s=round(statistics.median(rates["message_db"])),
        ratio_message_db=median_ratio(rates, "pgstore", "message_db"),
        write_message_ratio_message_db=median_ratio(rates, "pgstore_write_message", "message_db"),
        ratio_bare=median_ratio(rates, "pgstore", "bare"),
        ratio_indexed=median_ratio(rates, "pgstore", "indexed"),
        ratio_table=median_ratio(rates, "pgstore", "table"),
        table_ratio_bare=median_ratio(rates, "table", "bare"),
    )


def measure_batches(
    report: Report, conninfo: str, clients: int, rounds: int, seconds: float
) -> None:
    with ClientPool(conninfo, clients) as pool:
        rates = compare(pool, {"bare": plain_batch, "pgstore": append_batch}, rounds, seconds)
    report.add(
        test=f"batch of {BATCH}",
        clients=clients,
        categories=1,
        bare_insert_per_s=round(statistics.median(rates["bare"])),
        pgstore_per_s=round(statistics.median(rates["pgstore"])),
        ratio_bare=median_ratio(rates, "pgstore", "bare"),
    )


def measure_api(report: Report, conninfo: str, rounds: int, seconds: float) -> None:
    """One client: `EventStore.append` (the Python API: its pool, its checks, its
    parameters) against the same append as one statement on a connection of its own."""
    with (
        psycopg.connect(conninfo, autocommit=True) as conn,
        EventStore.connect(conninfo, max_size=1) as store,
    ):

        def rate(name: str) -> float:
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                if name == "api":
                    message = NewMessage("Happened", DATA, metadata=META)
                    store.append(stream_for(0, count, 1), message)
                else:
                    append_one(1, conn, 0, count)
                count += 1
            return count / (time.perf_counter() - started)

        rates = interleaved(["statement", "api"], rounds, rate)
    report.add(
        test="single append through EventStore.append",
        clients=1,
        categories=1,
        pgstore_per_s=round(statistics.median(rates["api"])),
        statement_per_s=round(statistics.median(rates["statement"])),
        ratio_statement=median_ratio(rates, "api", "statement"),
    )


def main() -> None:
    args = arguments(__doc__ or "")
    rounds, seconds = (3, 0.8) if args.quick else (5, 3.0)
    report = Report("append", args.quick)
    with scratch_database(args.dsn, "append") as conninfo:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(PLAIN_TABLE)
            conn.execute(MESSAGE_DB_SQL.read_text())
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {rounds} interleaved rounds of {seconds}s"
            " per contender, medians"
        )
        with draining_notifies(conninfo):
            shapes = (
                [(1, 1), (4, 1), (16, 1), (16, 20)]
                if args.quick
                else [(c, k) for c in (1, 4, 16) for k in (1, 20)]
            )
            for clients, categories in shapes:
                measure(report, conninfo, clients, categories, rounds, seconds)
            for clients in (1,) if args.quick else (1, 4):
                measure_batches(report, conninfo, clients, rounds, seconds)
            measure_api(report, conninfo, rounds, seconds)
    report.notes.append(
        "a LISTEN connection drained NOTIFYs throughout (the dispatcher's wake-up path)"
    )
    report.finish(args.output)


if __name__ == "__main__":
    main()
