"""The spec's handler on pgstore against the same handler on Protean 0.18's engine with
Message DB 1.3, on the same server in the same run: events handled per second.

Protean (from PyPI) goes into a virtual environment of its own and Message DB's SQL
(from the npm package @eventide/message-db) into a scratch database of its own, both
kept in bench/.protean/ for the next run.

python bench/protean_engine.py [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from common import Report, arguments, scratch_database, server_version
from dispatch import BOOKS, spec_handler
from psycopg import sql

from pgstore import connection

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".protean"
PROTEAN = "protean[message-db,postgresql]==0.18.0"
MESSAGE_DB = "@eventide/message-db@1.3.1"
# Message DB's install.sh, in its order (the pgcrypto extension is left out: its one
# use, gen_random_uuid(), is built into PostgreSQL since 13, and some servers, such as
# the embedded one, do not ship the extension).
MESSAGE_DB_FILES = [
    "schema/message-store.sql",
    "tables/messages.sql",
    "types/message.sql",
    "functions/message-store-version.sql",
    "functions/hash-64.sql",
    "functions/acquire-lock.sql",
    "functions/category.sql",
    "functions/is-category.sql",
    "functions/id.sql",
    "functions/cardinal-id.sql",
    "functions/stream-version.sql",
    "functions/write-message.sql",
    "functions/get-stream-messages.sql",
    "functions/get-category-messages.sql",
    "functions/get-last-stream-message.sql",
    "indexes/messages-id.sql",
    "indexes/messages-stream.sql",
    "indexes/messages-category.sql",
]


def protean_python() -> Path:
    """A Python with Protean installed (made once)."""
    environment = CACHE / "venv"
    python = environment / "bin" / "python"
    marker = environment / f"{PROTEAN}.installed"
    if not marker.exists():
        venv.create(environment, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PROTEAN],
            check=True,
        )
        marker.touch()
    return python


def message_db_sql() -> Path:
    """Message DB's database/ folder from its npm package (fetched once)."""
    unpacked = CACHE / "message-db"
    if not (unpacked / "package" / "database" / "VERSION.txt").exists():
        npm = shutil.which("npm")
        if npm is None:
            sys.exit(f"bench/protean_engine.py needs npm to fetch Message DB's SQL ({MESSAGE_DB})")
        CACHE.mkdir(exist_ok=True)
        packed = subprocess.run(
            [npm, "pack", MESSAGE_DB, "--pack-destination", str(CACHE), "--silent"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with tarfile.open(CACHE / packed) as archive:
            archive.extractall(unpacked, filter="data")
    return unpacked / "package" / "database"


@contextmanager
def message_db_database(dsn: str | None, database: Path) -> Iterator[str]:
    """A scratch database with Message DB installed, dropped afterwards."""
    server = connection.resolve(dsn).conninfo
    name = sql.Identifier("pgstore_bench_message_db")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
        # Message DB's functions call each other unqualified, as its own role's
        # search_path lets them.
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET search_path = message_store, public").format(name)
        )
    conninfo = psycopg.conninfo.make_conninfo(server, dbname="pgstore_bench_message_db")
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for file in MESSAGE_DB_FILES:
                conn.execute((database / file).read_text())  # Message DB's own SQL, as shipped
        yield conninfo
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(drop)


def protean_rate(python: Path, conninfo: str, events: int) -> float:
    """Events per second of Protean's engine on the spec's handler."""
    # Protean's Message DB adapter takes a URL; every setting goes in its query string
    # (the server may be a socket directory).
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    url = "postgresql:///?" + urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    result = subprocess.run(
        [str(python), str(HERE / "protean_app.py"), url, str(events), str(BOOKS)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"Protean's run failed ({result.returncode}):\n{result.stderr[-4000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return float(measured["events"]) / float(measured["seconds"])


def main() -> None:
    args = arguments(__doc__ or "")
    events, rounds = (500, 2) if args.quick else (2000, 3)
    report = Report("protean", args.quick)
    python = protean_python()
    database = message_db_sql()
    ratios: list[tuple[float, float, float]] = []
    with scratch_database(args.dsn, "protean") as conninfo:
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {events} shipped orders over {BOOKS}"
            f" books; {rounds} rounds, medians; {PROTEAN} with Message DB"
            f" {(database / 'VERSION.txt').read_text().strip()}, its aggregates in"
            " PostgreSQL (its SQLAlchemy provider) as pgstore's are; both with Protean's"
            " default of 10 messages per tick"
        )
        for _ in range(rounds):
            with message_db_database(args.dsn, database) as message_db:
                theirs = protean_rate(python, message_db, events)
            ours = spec_handler(conninfo, events)
            ratios.append((ours / theirs, ours, theirs))
    ratio, ours, theirs = sorted(ratios)[len(ratios) // 2]
    report.add(
        test="the spec's handler, event_store",
        pgstore_per_s=round(ours),
        protean_per_s=round(theirs),
        ratio=round(ratio, 1),
    )
    report.finish(args.output)


if __name__ == "__main__":
    main()
