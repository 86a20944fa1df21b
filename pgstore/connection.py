"""Finding the database: --dsn, PGSTORE_DSN, libpq's PG* variables, else the embedded server."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# libpq variables that, when set, say "connect there" (PGPASSWORD alone does not).
_LIBPQ_TARGET_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


@dataclass(frozen=True)
class Target:
    """A resolved connection string and where it came from."""

    conninfo: str
    source: str


def resolve(dsn: str | None = None) -> Target:
    """Return the database to use, in pgstore's documented order of precedence: `dsn`
    (an empty string counts as none), PGSTORE_DSN, libpq's variables, the embedded
    server (started if needed, and announced on stderr). The CLI, EventStore and
    Domain all find their database here."""
    if dsn:
        return Target(dsn, "--dsn")
    if os.environ.get("PGSTORE_DSN"):
        return Target(os.environ["PGSTORE_DSN"], "PGSTORE_DSN")
    set_variables = [name for name in _LIBPQ_TARGET_VARIABLES if os.environ.get(name)]
    if set_variables:
        # An empty conninfo lets libpq read the variables itself.
        return Target("", "libpq environment (" + ", ".join(set_variables) + ")")
    from pgstore.server import EmbeddedServer

    server = EmbeddedServer()
    url = server.ensure_running()
    if server.data_dir not in _announced:
        # Said once per process and data directory, on stderr, by the CLI and the
        # Python API alike: which database you are writing to is never a surprise.
        _announced.add(server.data_dir)
        print(
            f"pgstore: using the embedded {server.version()} in {server.data_dir} "
            "(`pgstore server url` prints its address)",
            file=sys.stderr,
        )
    return Target(url, "embedded")


_announced: set[Path] = set()
