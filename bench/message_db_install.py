"""Message DB 1.3's own SQL, from its npm package, installed in a scratch database: the
peer that bench/append_pgbench.py and bench/protean_engine.py measure pgstore against."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from pgstore import connection

CACHE = Path(__file__).resolve().parent / ".cache"  # kept for the next run
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


def message_db_sql() -> Path:
    """Message DB's database/ folder from its npm package (fetched once)."""
    unpacked = CACHE / "message-db"
    if not (unpacked / "package" / "database" / "VERSION.txt").exists():
        npm = shutil.which("npm")
        if npm is None:
            sys.exit(f"this benchmark needs npm to fetch Message DB's SQL ({MESSAGE_DB})")
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
