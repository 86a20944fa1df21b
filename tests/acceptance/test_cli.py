"""The `pgstore` command line, run as a user runs it: as a subprocess."""

from __future__ import annotations

import json
import subprocess

import pytest

from pgstore.cli import Exit
from tests.acceptance.subprocesses import environment, run_python


def pgstore(
    *args: str, dsn: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "pgstore", *args, env=environment(dsn), stdin=stdin, timeout=60)


def test_migrate_append_read(dsn: str) -> None:
    migrated = pgstore("migrate", dsn=dsn)
    assert migrated.returncode == 0, migrated.stderr
    assert "functions up to date" in migrated.stdout

    appended = pgstore(
        "append", "order-1", "OrderPlaced", '{"total": 42}', "--expected-version", "-1", dsn=dsn
    )
    assert appended.returncode == 0, appended.stderr
    assert appended.stdout.startswith("order-1 position 0 global_position ")
    from_stdin = pgstore("append", "order-1", "OrderShipped", "-", dsn=dsn, stdin='{"by": "post"}')
    assert from_stdin.returncode == 0, from_stdin.stderr

    as_json = pgstore("read", "order-1", "--json", dsn=dsn)
    assert as_json.returncode == 0
    messages = json.loads(as_json.stdout)
    assert [(m["position"], m["type"], m["data"]) for m in messages] == [
        (0, "OrderPlaced", {"total": 42}),
        (1, "OrderShipped", {"by": "post"}),
    ]
    table = pgstore("read", "order", dsn=dsn)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        "global_position",
        "stream_name",
        "position",
        "type",
        "time",
        "data",
    ]
    assert len(table.stdout.splitlines()) == 3

    status = pgstore("migrate", "--status", dsn=dsn)
    assert "0001_event_store.sql" in status.stdout and "pending" not in status.stdout


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["append", "order", "A"], Exit.INVALID_INPUT, "Invalid stream name"),
        (["append", "order-1", "A", "{not json"], Exit.INVALID_INPUT, "not valid JSON"),
        (["append", "order-1", "A", "[1, 2]"], Exit.INVALID_INPUT, "must be a JSON object"),
        (
            ["append", "order-1", "A", "{}", "--expected-version", "3"],
            Exit.CONFLICT,
            "Wrong expected version: 3 (Stream: order-1, Stream Version: -1)",
        ),
        (["read", "order-1", "--limit", "0"], Exit.INVALID_INPUT, "Batch size"),
    ],
)
def test_bad_input_gets_a_clear_error_and_exit_code(
    dsn: str, args: list[str], code: int, text: str
) -> None:
    result = pgstore(*args, dsn=dsn)
    assert result.returncode == code, result.stderr
    assert "pgstore: error:" in result.stderr and text in result.stderr
    assert json.loads(pgstore("read", "order", "--json", dsn=dsn).stdout) == []


def test_unreachable_database(tmp_path: object) -> None:
    result = pgstore("read", "order", dsn="host=127.0.0.1 port=1 connect_timeout=2")
    assert result.returncode == Exit.UNAVAILABLE
    assert "pgstore: error:" in result.stderr


def test_help_explains_the_commands() -> None:
    result = pgstore("--help")
    assert result.returncode == 0
    for command in ("migrate", "append", "read", "server"):
        assert command in result.stdout
