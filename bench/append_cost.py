"""Where a single append's time goes: its work added piece by piece, 16 clients.

python bench/append_cost.py [--quick]
"""

from __future__ import annotations

import statistics
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from append import APPEND, DATA, META, PLAIN_TABLE, plain_insert
from common import (
    ClientPool,
    Operation,
    Report,
    arguments,
    compare,
    median_ratio,
    scratch_database,
    server_version,
)
from psycopg.types.json import Jsonb

PROBES = Path(__file__).resolve().parent / "sql" / "append_cost.sql"
CLIENTS = 16

# Cumulative: each contender does everything the one above it does, and more.
STEPS = [
    ("bare", "plain INSERT, primary key only (the baseline)"),
    ("table", "the same INSERT into pgstore.messages (partitions, three indexes)"),
    ("insert_only", "that INSERT inside a function shaped like append_messages"),
    ("with_ids", "+ claim the ids in pgstore.message_ids"),
    ("with_version", "+ claim the positions on the stream's head row"),
    ("append_messages", "+ checks, stream lock, ordinal, order check, wake-up: the real one"),
]


def call_function(name: str, conn: psycopg.Connection[Any], index: int, count: int) -> int:
    # Every contender writes its own category: their streams never meet.
    stream = f"{name.replace('_', '')}-{index}-{count % 50}"
    conn.execute(
        APPEND.replace("pgstore.append_messages", f"bench_cost.{name}")
        if name != "append_messages"
        else APPEND,
        (stream, uuid.uuid4(), "Happened", Jsonb(DATA), Jsonb(META)),
    )
    return 1


WAKING = (
    "SELECT position FROM bench_cost.append_waking(%s, %s, ARRAY[%s]::uuid[], ARRAY[%s]::text[],"
    " ARRAY[%s]::jsonb[], ARRAY[%s]::jsonb[])"
)


def append_waking(wake_up: str, conn: psycopg.Connection[Any], index: int, count: int) -> int:
    """The real append through a wrapper that turns its wake-up on or off."""
    stream = f"waking{wake_up}-{index}-{count % 50}"
    conn.execute(WAKING, (wake_up, stream, uuid.uuid4(), "Happened", Jsonb(DATA), Jsonb(META)))
    return 1


def main() -> None:
    args = arguments(__doc__ or "")
    rounds, seconds = (3, 1.0) if args.quick else (5, 3.0)
    report = Report("append_cost", args.quick)
    operations: dict[str, Operation] = {
        "bare": partial(plain_insert, "bench_plain", 1),
        "table": partial(plain_insert, "pgstore.messages", 1),
    }
    operations |= {name: partial(call_function, name) for name, _ in STEPS[2:]}
    operations |= {f"wake_up_{w}": partial(append_waking, w) for w in ("on", "off")}
    with scratch_database(args.dsn, "append_cost") as conninfo:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(PLAIN_TABLE)
            conn.execute(PROBES.read_text())
        with ClientPool(conninfo, CLIENTS) as pool:
            rates = compare(pool, operations, rounds, seconds)
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {CLIENTS} clients, one category each;"
            f" {rounds} interleaved rounds of {seconds}s per contender, medians"
        )
    previous = "bare"
    for name, work in STEPS:
        report.add(
            contender=name,
            work=work,
            per_s=round(statistics.median(rates[name])),
            ratio_bare=median_ratio(rates, name, "bare"),
            ratio_previous=median_ratio(rates, name, previous),
        )
        previous = name
    report.add(
        contender="without_wake_up",
        work="the real one with pgstore.wake_up off, against it on (same wrapper)",
        per_s=round(statistics.median(rates["wake_up_off"])),
        ratio_bare=median_ratio(rates, "wake_up_off", "bare"),
        ratio_previous=median_ratio(rates, "wake_up_off", "wake_up_on"),
    )
    report.finish(args.output)


if __name__ == "__main__":
    main()
