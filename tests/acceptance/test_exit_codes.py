"""Every exit code, from each family of commands, as a user meets it; and the README's
table of exit codes is the code's."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from pgstore.cli import Exit
from tests.acceptance.subprocesses import ROOT, environment
from tests.acceptance.test_cli import pgstore
from tests.waiting import wait_until

Conn = psycopg.Connection[Any]


def test_the_readme_table_is_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| `(\d+)` \|", readme, re.MULTILINE)}
    assert documented == {int(code) for code in Exit}


def test_store_commands(dsn: str) -> None:
    assert pgstore("append", "order-1", "Placed", dsn=dsn).returncode == Exit.OK
    assert pgstore("append", "order", "Placed", dsn=dsn).returncode == Exit.INVALID_INPUT
    conflict = pgstore("append", "order-1", "Placed", "--expected-version", "5", dsn=dsn)
    assert conflict.returncode == Exit.CONFLICT
    assert pgstore("read", "order", "--no-such-option", dsn=dsn).returncode == Exit.USAGE
    unreachable = "host=127.0.0.1 port=1 connect_timeout=2"
    assert pgstore("read", "order", dsn=unreachable).returncode == Exit.UNAVAILABLE


def test_dsn_goes_before_or_after_the_subcommand(dsn: str) -> None:
    unreachable = "host=127.0.0.1 port=1 connect_timeout=2"
    assert pgstore("--dsn", dsn, "read", "order", dsn=unreachable).returncode == Exit.OK
    assert pgstore("read", "order", "--dsn", dsn, dsn=unreachable).returncode == Exit.OK
    assert pgstore("read", "order", "--dsn", unreachable, dsn=dsn).returncode == Exit.UNAVAILABLE


def test_handler_commands(dsn: str, conn: Conn) -> None:
    assert pgstore("dispatch", "tests.apps.failing", "--once", dsn=dsn).returncode == Exit.OK
    assert pgstore("dispatch", "tests.apps.nope", dsn=dsn).returncode == Exit.CONFIGURATION
    assert pgstore("dlq", "list", "NoSuchHandler", dsn=dsn).returncode == Exit.CONFIGURATION
    unknown = pgstore("dlq", "show", "Picky", str(uuid.uuid4()), dsn=dsn)
    assert unknown.returncode == Exit.INVALID_INPUT, unknown.stderr
    assert "No dead letter" in unknown.stderr
    unexpected = pgstore("dispatch", "tests.apps.unexpected", "--once", dsn=dsn)
    assert unexpected.returncode == Exit.UNEXPECTED
    assert "Traceback" in unexpected.stderr


def test_a_declined_confirmation_is_not_an_error(dsn: str, conn: Conn) -> None:
    assert pgstore("dispatch", "tests.apps.failing", "--once", dsn=dsn).returncode == Exit.OK
    for args in (
        ["queues", "drop", "PickyQueue"],  # a short name works
        ["dlq", "purge", "Picky"],
        ["rewind", "Picky", "--from", "0"],
        ["rebase"],
    ):
        declined = pgstore(*args, dsn=dsn, stdin="n\n")
        assert declined.returncode == Exit.OK, (args, declined.stderr)
        assert "nothing done" in declined.stdout, args
    assert conn.execute("SELECT count(*) FROM pgstore.stream_subscriptions").fetchone() == (1,)
    dropped = pgstore("queues", "drop", "PickyQueue", "--yes", dsn=dsn)
    assert dropped.returncode == Exit.OK, dropped.stderr
    assert conn.execute("SELECT count(*) FROM pgstore.stream_subscriptions").fetchone() == (0,)


def test_inspect_commands(dsn: str) -> None:
    assert pgstore("status", dsn=dsn).returncode == Exit.OK
    assert (
        pgstore("query", "DELETE FROM pgstore.messages", dsn=dsn).returncode == Exit.INVALID_INPUT
    )
    slow = pgstore(
        "query", "SELECT count(*) FROM generate_series(1, 1000000000)", "--timeout", "0.2", dsn=dsn
    )
    assert slow.returncode == Exit.TIMEOUT, slow.stderr
    assert pgstore("rewind", "Nobody", "--from", "0", dsn=dsn).returncode == Exit.CONFIGURATION


def test_migrate_status_shows_an_edited_migration(dsn: str, conn: Conn) -> None:
    conn.execute("UPDATE pgstore.schema_migrations SET checksum = 'edited' WHERE version = 2")
    status = pgstore("migrate", "--status", dsn=dsn)
    assert status.returncode == Exit.UNAVAILABLE
    assert "0002_handlers.sql" in status.stdout and "CHANGED" in status.stdout
    assert "0002_handlers.sql (changed since it was applied)" in status.stderr
    assert pgstore("migrate", dsn=dsn).returncode == Exit.UNAVAILABLE


@contextmanager
def interruptible_children() -> Iterator[None]:
    """Children started in the block get Ctrl-C as from a terminal. A job a shell starts
    in the background without job control inherits SIGINT ignored, passes that on, and
    Python then leaves it ignored (so does pgstore, rightly: that is how such a shell
    asks for it); run that way, the suite saw the watch ignore the interrupt. A Python
    handler here becomes the default disposition in a child."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_interrupting_a_watch_exits_130(dsn: str) -> None:
    with interruptible_children():
        watching = subprocess.Popen(
            [sys.executable, "-m", "pgstore", "status", "--watch", "0.2"],
            cwd=ROOT,
            # faulthandler: a watch that ignores the interrupt is made to dump where it is.
            env=environment(dsn, PYTHONFAULTHANDLER="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        output = watching.stdout
        assert output is not None
        wait_until(lambda: "read horizon" in output.readline(), timeout=30)
        watching.send_signal(signal.SIGINT)
        try:
            # communicate, not wait: its output is drained meanwhile, so a full pipe
            # cannot keep it from exiting.
            _, errors = watching.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            watching.send_signal(signal.SIGABRT)
            _, errors = watching.communicate(timeout=30)
            pytest.fail(f"the watch ignored SIGINT for 30 s; where it was:\n{errors[-4000:]}")
        assert watching.returncode == Exit.INTERRUPTED, errors
    finally:
        watching.kill()


@pytest.mark.parametrize("command", ["migrate", "read", "status", "dlq", "queues", "query"])
def test_every_command_answers_help(command: str) -> None:
    assert pgstore(command, "--help").returncode == Exit.OK
