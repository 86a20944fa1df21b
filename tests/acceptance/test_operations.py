"""Operating handlers from the CLI: dead letters, configuration, queues."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import psycopg
import pytest

from pgstore.messages import NewMessage
from pgstore.store import EventStore
from tests.acceptance.subprocesses import environment, run_python


def pgstore(dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in environment(dsn).items() if k != "FAILING"}
    return run_python("-m", "pgstore", *args, env=inherited | env)


def done(conn: psycopg.Connection[Any], handler: str) -> int:
    row = conn.execute(
        "SELECT (data->>'count')::int FROM pgstore.aggregates WHERE category = 'done' AND id = %s",
        (handler,),
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("handler", ["Picky", "PickyQueue"])
def test_dead_letter_cli(dsn: str, conn: psycopg.Connection[Any], handler: str) -> None:
    with EventStore.connect(dsn) as store:
        first = store.append("task-1", NewMessage("failing.Ran.v1", {"n": 1}))[0]
        store.append("task-2", NewMessage("failing.Ran.v1", {"n": 2}))
    failed = pgstore(dsn, "dispatch", "tests.apps.failing", "--once", FAILING="1")
    assert failed.returncode == 0, failed.stderr
    assert "giving up" in failed.stderr

    listed = pgstore(dsn, "dlq", "list", handler)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2
    assert f"{handler} is failing on purpose" in listed.stdout

    shown = pgstore(dsn, "dlq", "show", handler, str(first.id))
    letter = json.loads(shown.stdout)
    assert letter["handler"] == f"failing.{handler}"
    assert letter["attempts"] == 1 and "RuntimeError" in letter["traceback"]
    assert letter["message"]["data"] == {"n": 1}

    replayed = pgstore(dsn, "dlq", "replay", handler, str(first.id))
    assert replayed.returncode == 0 and replayed.stdout.startswith("1 dead letter")
    assert pgstore(dsn, "dispatch", "tests.apps.failing", "--once").returncode == 0
    other = "PickyQueue" if handler == "Picky" else "Picky"
    assert (done(conn, handler), done(conn, other)) == (1, 0)  # to that handler only
    assert len(pgstore(dsn, "dlq", "list", handler).stdout.splitlines()) == 1

    purged = pgstore(dsn, "dlq", "purge", handler, "--yes")
    assert purged.stdout.strip() == "1 dead letter(s) purged"
    assert pgstore(dsn, "dlq", "list", handler).stdout.strip() == "(no dead letters)"


def test_dead_letter_cli_names_unknown_handlers(dsn: str) -> None:
    result = pgstore(dsn, "dlq", "list", "Nobody")
    assert result.returncode == 6
    assert "No handler named 'Nobody'" in result.stderr


def test_config_show(dsn: str) -> None:
    result = pgstore(dsn, "config", "show", "tests.apps.failing", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["failing.Picky"]["max_retries"] == {"value": 0, "source": "domain defaults"}
    assert shown["failing.PickyQueue"]["subscription_type"] == {
        "value": "stream",
        "source": "handler subscription_type",
    }
    assert shown["failing.Picky"]["subscription_type"]["source"] == "built-in default"
    table = pgstore(dsn, "config", "show", "tests.apps.failing")
    assert "failing.PickyQueue" in table.stdout and "handler subscription_type" in table.stdout


def test_queues_are_created_listed_and_dropped_explicitly(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    created = pgstore(dsn, "queues", "create", "tests.apps.failing")
    assert created.returncode == 0, created.stderr
    assert "failing.PickyQueue: ps_failing_pickyqueue_" in created.stdout
    again = pgstore(dsn, "migrate", "--app", "tests.apps.failing")  # idempotent, from migrate too
    assert again.returncode == 0 and "failing.PickyQueue: ps_failing_pickyqueue_" in again.stdout
    listed = pgstore(dsn, "queues", "list")
    assert "failing.PickyQueue" in listed.stdout and "depth=0" in listed.stdout
    dropped = pgstore(dsn, "queues", "drop", "failing.PickyQueue", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert conn.execute("SELECT count(*) FROM pgstore.stream_subscriptions").fetchone() == (0,)
    assert pgstore(dsn, "queues", "list").stdout.strip() == "(no stream subscriptions)"


def test_query_status_and_replay_from_the_command_line(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    with EventStore.connect(dsn) as store:
        store.append("task-1", NewMessage("failing.Ran.v1", {"n": 1}))
    assert pgstore(dsn, "dispatch", "tests.apps.failing", "--once").returncode == 0

    queried = pgstore(dsn, "query", "SELECT stream_name, data.n FROM category('task')", "--json")
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout) == [{"stream_name": "task-1", "n": "1"}]
    refused = pgstore(dsn, "query", "DELETE FROM pgstore.messages")
    assert refused.returncode == 3 and "Only SELECT queries are allowed" in refused.stderr

    status = pgstore(dsn, "status", "tests.apps.failing", "--json")
    assert status.returncode == 0, status.stderr
    handlers = {h["handler"]: h for h in json.loads(status.stdout)["handlers"]}
    assert handlers["failing.Picky"]["lag_events"] == 0
    assert handlers["failing.PickyQueue"]["subscription_type"] == "stream"
    assert "read horizon" in pgstore(dsn, "status").stdout

    replayed = pgstore(dsn, "replay", "Picky", "--from", "0", "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert pgstore(dsn, "dispatch", "tests.apps.failing", "--once").returncode == 0
    assert (done(conn, "Picky"), done(conn, "PickyQueue")) == (2, 1)
    assert pgstore(dsn, "replay", "Picky").returncode == 2  # neither --from nor --from-time
