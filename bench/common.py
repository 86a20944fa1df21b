"""What every benchmark shares: a scratch database, timing helpers, JSON results, a table."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgstore import connection
from pgstore.migrate import migrate

RESULTS = Path(__file__).resolve().parent / "results"


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument("--dsn", help="server to use (default: as pgstore finds one)")
    parser.add_argument("--output", type=Path, help="JSON results file (default: bench/results/)")
    return parser.parse_args()


@contextmanager
def scratch_database(dsn: str | None, name: str) -> Iterator[str]:
    """A freshly migrated database on the server, dropped afterwards."""
    server = connection.resolve(dsn).conninfo
    dbname = f"pgstore_bench_{name}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    conninfo = psycopg.conninfo.make_conninfo(server, dbname=dbname)
    try:
        with psycopg.connect(conninfo) as conn:
            migrate(conn)
        yield conninfo
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples_ms, 0.50), 3),
        "p99_ms": round(percentile(samples_ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(samples_ms), 3),
        "samples": len(samples_ms),
    }


# One client operation: (connection, client index, operations this client has done in
# all rounds so far) -> operations it did now. A top-level function or a
# functools.partial of one: it crosses processes.
Operation = Callable[[psycopg.Connection[Any], int, int], int]


class ClientPool:
    """Client processes, each with its own connection, that run timed rounds together.

    The processes connect once and stay: a round measures only the operations, never
    process start-up or imports (on two cores, sixteen of those overlap the clock).
    Every client waits at a barrier before its clock starts, so a round's clients all
    run at once.
    """

    def __init__(self, conninfo: str, clients: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._barrier = context.Barrier(clients)
        self._results: multiprocessing.Queue[int | str] = context.Queue()
        self._commands: list[multiprocessing.Queue[tuple[Operation, float] | None]] = []
        self._processes = []
        for index in range(clients):
            commands: multiprocessing.Queue[tuple[Operation, float] | None] = context.Queue()
            process = context.Process(
                target=_client_main,
                args=(conninfo, index, commands, self._results, self._barrier),
                daemon=True,
            )
            process.start()
            self._commands.append(commands)
            self._processes.append(process)

    def run(self, operation: Operation, seconds: float) -> float:
        """Run `operation` in every client for `seconds`; return operations per second."""
        for commands in self._commands:
            commands.put((operation, seconds))
        total = 0
        for _ in self._commands:
            result = self._results.get(timeout=seconds + 240)
            if isinstance(result, str):
                raise RuntimeError(f"a benchmark client failed: {result}")
            total += result
        return total / seconds

    def close(self) -> None:
        for commands in self._commands:
            commands.put(None)
        for process in self._processes:
            process.join(30)

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def interleaved(
    names: list[str], rounds: int, measure: Callable[[str], float]
) -> dict[str, list[float]]:
    """`measure(name)` for every contender in every round, each round in a rotated
    order (so a checkpoint or an autovacuum does not always land on the same one)."""
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(measure(name))
    return rates


def compare(
    pool: ClientPool, operations: dict[str, Operation], rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Rates per operation of the pool's clients, measured in interleaved rounds."""
    return interleaved(list(operations), rounds, lambda name: pool.run(operations[name], seconds))


def median_ratio(rates: dict[str, list[float]], name: str, baseline: str) -> float:
    """The median of the per-round ratios: each pairs two runs minutes apart at most."""
    pairs = zip(rates[name], rates[baseline], strict=True)
    return round(statistics.median(a / b for a, b in pairs), 2)


def _client_main(
    conninfo: str,
    index: int,
    commands: multiprocessing.Queue[tuple[Operation, float] | None],
    results: multiprocessing.Queue[int | str],
    barrier: Any,
) -> None:
    done = 0  # across rounds, so operations can derive unique keys from it
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.prepare_threshold = 0
            while (command := commands.get()) is not None:
                operation, seconds = command
                barrier.wait(timeout=120)
                stop_at = time.monotonic() + seconds
                start = done
                while time.monotonic() < stop_at:
                    done += operation(conn, index, done)
                results.put(done - start)
    except Exception as error:
        results.put(f"client {index}: {error!r}")  # the pool raises it instead of hanging
        raise


@dataclass
class Report:
    """Rows of a results table, written as JSON and printed."""

    benchmark: str
    quick: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: Any) -> None:
        self.rows.append(row)
        print("  " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    def finish(self, output: Path | None) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = output or RESULTS / f"{self.benchmark}.json"
        document = {
            "benchmark": self.benchmark,
            "quick": self.quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "rows": self.rows,
            "notes": self.notes,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        print()
        print(self.table())
        for note in self.notes:
            print(f"note: {note}")
        print(f"\nresults: {path}")
        return path

    def table(self) -> str:
        if not self.rows:
            return "(no results)"
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        cells = [[str(row.get(c, "")) for c in columns] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        return "\n".join(lines)


def server_version(conninfo: str) -> str:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def _drain_notifies(conninfo: str, stop: Any) -> None:
    """What a dispatcher does while it waits: LISTEN, and drain every NOTIFY."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("LISTEN pgstore_messages")
        while not stop.is_set():
            for _ in conn.notifies(timeout=0.2):
                pass


@contextmanager
def draining_notifies(conninfo: str) -> Iterator[None]:
    """A process that listens for the appends' wake-ups, as a dispatcher would, for the
    length of the block (a NOTIFY nobody drains would cost differently)."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    watcher = context.Process(target=_drain_notifies, args=(conninfo, stop))
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(10)
