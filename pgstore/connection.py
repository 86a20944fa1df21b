"""Finding the database: --dsn, PGSTORE_DSN, libpq's PG* variables, else the embedded server."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# libpq variables that, when set, say "connect there" (PGPASSWORD alone does not).
_LIBPQ_TARGET_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


@dataclass(frozen=True)
class Target:
    """A resolved connection string and where it came from."""

    conninfo: str
    source: str

    @property
    def embedded(self) -> bool:
        return self.source == "embedded"


def resolve(dsn: str | None = None) -> Target:
    """Return the database to use, in pgstore's documented order of precedence."""
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
    logger.debug("using the embedded %s in %s", server.version(), server.data_dir)
    return Target(url, "embedded")
