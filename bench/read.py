"""Read latency (p50/p99) at 10k and at 1M stored events: the growth ratio is the point.

python bench/read.py [--quick]
"""

from __future__ import annotations

import random
import time

import psycopg
from common import Report, arguments, latency_summary, scratch_database, server_version

CATEGORIES = 20
STREAM_LENGTH = 20

# Bulk load, one transaction per chunk (a global position holds at most 65,536
# messages of one transaction). Rows look exactly like appended ones: position from
# 0 in each stream, global position = (xid << 16) + ordinal.
LOAD = """
WITH base AS (SELECT pg_current_xact_id()::text::bigint << 16 AS gp)
INSERT INTO pgstore.messages (global_position, position, stream_name, category, type, data,
                              metadata, id, consumer_hash)
SELECT base.gp + n - %(start)s,
       (n / %(categories)s) %% %(length)s,
       'cat' || (n %% %(categories)s) || '-' || (n / (%(categories)s * %(length)s)),
       'cat' || (n %% %(categories)s),
       'Happened',
       jsonb_build_object('n', n, 'note', repeat('x', 80)),
       '{"correlation_id": "c"}'::jsonb,
       gen_random_uuid(),
       pgstore.hash_64((n / (%(categories)s * %(length)s))::text)
  FROM base, generate_series(%(start)s, %(stop)s - 1) AS n
"""


def load(conninfo: str, start: int, stop: int) -> None:
    chunk = 50_000
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for lower in range(start, stop, chunk):
            params = {
                "start": lower,
                "stop": min(stop, lower + chunk),
                "categories": CATEGORIES,
                "length": STREAM_LENGTH,
            }
            conn.execute(LOAD, params)
        conn.execute("ANALYZE pgstore.messages")


def measure(conninfo: str, total: int, samples: int) -> dict[str, dict[str, float]]:
    rng = random.Random(total)
    streams = total // STREAM_LENGTH
    timings: dict[str, list[float]] = {"stream": [], "category": [], "consumer_group": []}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Start positions with at least 400 messages after them, so every read (a
        # consumer-group read too) returns a full batch at both sizes.
        positions = [
            int(r[0])
            for r in conn.execute(
                "SELECT global_position FROM pgstore.messages WHERE category = 'cat0'"
                " ORDER BY global_position LIMIT 5000"
            ).fetchall()
        ]
        starts = positions[: len(positions) - 400]

        def stream() -> object:
            name = f"cat{rng.randrange(CATEGORIES)}-{rng.randrange(streams // CATEGORIES or 1)}"
            return conn.execute("SELECT * FROM pgstore.read_stream(%s, 0, 100)", (name,)).fetchall()

        def category() -> object:
            return conn.execute(
                "SELECT * FROM pgstore.read_category('cat0', %s, 100)", (rng.choice(starts),)
            ).fetchall()

        def consumer_group() -> object:
            return conn.execute(
                "SELECT * FROM pgstore.read_category('cat0', %s, 100, %s, 4)",
                (rng.choice(starts), rng.randrange(4)),
            ).fetchall()

        queries = {"stream": stream, "category": category, "consumer_group": consumer_group}
        for name, query in queries.items():
            for _ in range(20):  # warm the plans and the cache
                query()
            for _ in range(samples):
                started = time.perf_counter()
                query()
                timings[name].append((time.perf_counter() - started) * 1000)
    return {name: latency_summary(values) for name, values in timings.items()}


def main() -> None:
    args = arguments(__doc__ or "")
    small, large = 10_000, 1_000_000
    samples = 200 if args.quick else 1000
    report = Report("read", args.quick)
    with scratch_database(args.dsn, "read") as conninfo:
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {CATEGORIES} categories, "
            f"streams of {STREAM_LENGTH}; reads of up to 100 messages"
        )
        load(conninfo, 0, small)
        at_small = measure(conninfo, small, samples)
        started = time.perf_counter()
        load(conninfo, small, large)
        report.notes.append(
            f"loaded {large - small} more events in {time.perf_counter() - started:.1f}s"
        )
        at_large = measure(conninfo, large, samples)
    for name in at_small:
        report.add(
            read=name,
            p50_ms_10k=at_small[name]["p50_ms"],
            p99_ms_10k=at_small[name]["p99_ms"],
            p50_ms_1m=at_large[name]["p50_ms"],
            p99_ms_1m=at_large[name]["p99_ms"],
            growth_p50=round(at_large[name]["p50_ms"] / at_small[name]["p50_ms"], 2),
            growth_p99=round(at_large[name]["p99_ms"] / at_small[name]["p99_ms"], 2),
        )
    report.finish(args.output)


if __name__ == "__main__":
    main()
