"""Does `pgstore dispatch --workers N` scale an event_store handler? One I/O-bound
handler (5 ms of waiting per event), its category split into 8 partitions, run by 1,
2 and 4 workers; the baseline is one worker, in the same run.

python bench/workers.py [--quick]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from common import Report, arguments, scratch_database, server_version

from pgstore.messages import NewMessage
from pgstore.store import EventStore

HERE = Path(__file__).resolve().parent
STREAMS = 40
PARTITIONS = 8
WAIT_MS = 5
HANDLED = "SELECT coalesce(sum((data->>'count')::int), 0) FROM pgstore.aggregates"


def wait_for(
    conn: psycopg.Connection[Any],
    query: str,
    target: int,
    timeout: float,
    process: subprocess.Popen[bytes],
    log: Path,
) -> None:
    """Wait until `query` reaches `target`; fail with the dispatcher's log if it ends
    or the deadline passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        row = conn.execute(query).fetchone()
        if row is not None and int(row[0]) >= target:
            return
        time.sleep(0.01)
    tail = log.read_text(errors="replace")[-4000:]
    ended = "" if process.poll() is None else f" (the dispatcher exited {process.returncode})"
    raise TimeoutError(f"{query!r} did not reach {target} in {timeout}s{ended}:\n{tail}")


def rate(conninfo: str, workers: int, events: int) -> float:
    """Events per second handled by `workers` workers, from the first append until the
    last is handled; the workers are up and waiting before the clock starts."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE pgstore.aggregates, pgstore.messages, pgstore.message_ids,"
            " pgstore.stream_heads, pgstore.handler_positions CASCADE"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {
        "PGSTORE_DSN": conninfo,
        "WORKERS_APP_PARTITIONS": str(PARTITIONS),
        "WORKERS_APP_WAIT_MS": str(WAIT_MS),
    }
    log = Path(tempfile.mkstemp(prefix="workers-", suffix=".log")[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "pgstore", "dispatch", "workers_app", "--workers", str(workers)],
        cwd=HERE,
        env=env,
        stderr=log.open("w"),  # a file, not a pipe: a full pipe would block the workers
        start_new_session=True,
    )
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            sessions = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            # Each worker: its session and its LISTEN connection.
            wait_for(conn, sessions, 2 * workers, 120, process, log)
            wait_for(
                conn,
                "SELECT count(*) FROM pgstore.handler_partitions",
                PARTITIONS,
                120,
                process,
                log,
            )
            started = time.perf_counter()
            with EventStore.connect(conninfo) as store:
                per_stream = events // STREAMS
                for stream in range(STREAMS):
                    store.append(
                        f"order-{stream}",
                        [NewMessage("sleepy.Placed.v1", {"n": n}) for n in range(per_stream)],
                    )
            wait_for(conn, HANDLED, per_stream * STREAMS, 600, process, log)
            return per_stream * STREAMS / (time.perf_counter() - started)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        log.unlink()


def main() -> None:
    args = arguments(__doc__ or "")
    events, rounds = (400, 2) if args.quick else (2000, 3)
    report = Report("workers", args.quick)
    with scratch_database(args.dsn, "workers") as conninfo:
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {events} events over {STREAMS} streams;"
            f" the handler waits {WAIT_MS} ms per event, then saves one aggregate;"
            f" {PARTITIONS} partitions; {rounds} rounds, medians"
        )
        rates: dict[int, list[float]] = {1: [], 2: [], 4: []}
        for round_number in range(rounds):
            order = list(rates) if round_number % 2 == 0 else list(reversed(rates))
            for workers in order:
                rates[workers].append(rate(conninfo, workers, events))
        baseline = sorted(rates[1])[len(rates[1]) // 2]
        for workers, measured in rates.items():
            median = sorted(measured)[len(measured) // 2]
            report.add(
                test="event_store handler, I/O-bound",
                workers=workers,
                events_per_s=round(median),
                one_worker_per_s=round(baseline),
                ratio=round(median / baseline, 2),
            )
    report.finish(args.output)


if __name__ == "__main__":
    main()
