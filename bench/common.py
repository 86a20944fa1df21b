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


def run_clients(worker: Callable[..., int], clients: int, seconds: float, *args: Any) -> float:
    """Run `worker(stop_at, index, *args)` in `clients` processes; return operations/s."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 1.0 + 0.05 * clients  # every process connected before the clock starts
    with context.Pool(clients) as pool:
        counts = pool.starmap(
            _timed, [(worker, start_at, start_at + seconds, i, *args) for i in range(clients)]
        )
    return sum(counts) / seconds


def _timed(
    worker: Callable[..., int], start_at: float, stop_at: float, index: int, *args: Any
) -> int:
    return worker(start_at, stop_at, index, *args)


def wait_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


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
