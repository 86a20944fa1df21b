"""Pure-Python pieces: named queries, error translation, name helpers, DSN resolution."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from pgstore import connection, errors
from pgstore._queries import QUERIES, load
from pgstore.messages import category, is_category


def test_named_queries_load(tmp_path: Path) -> None:
    path = tmp_path / "q.sql"
    path.write_text(
        "-- header\n\n-- name: one\nSELECT 1\n-- a comment\n\n-- name: two\nSELECT %(x)s\n"
    )
    assert load(path) == {"one": "SELECT 1", "two": "SELECT %(x)s"}
    assert {"append_messages", "read_stream", "read_category", "read_all"} <= set(QUERIES)


def test_every_store_error_has_its_own_sqlstate() -> None:
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.StoreError) and cls.sqlstate
    ]
    states = [cls.sqlstate for cls in classes]
    assert len(states) == len(set(states)) == 8
    for cls in classes:
        assert cls().args[0] == (cls.__doc__ or "").strip().splitlines()[0]


def test_untranslated_errors_pass_through() -> None:
    error = psycopg.errors.SyntaxError("boom")
    assert errors.translate(error) is error


@pytest.mark.parametrize(
    ("name", "expected_category", "names_category"),
    [
        ("order-1", "order", False),
        ("order", "order", True),
        ("bookstore::order-1-2", "bookstore::order", False),
        ("a-b+c", "a", False),
    ],
)
def test_name_helpers(name: str, expected_category: str, names_category: bool) -> None:
    assert category(name) == expected_category
    assert is_category(name) is names_category


def test_dsn_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "PGSTORE_DSN",
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGSERVICE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PGSTORE_DSN", "dbname=from_env")
    monkeypatch.setenv("PGHOST", "elsewhere")
    assert connection.resolve("dbname=explicit") == connection.Target("dbname=explicit", "--dsn")
    assert connection.resolve().conninfo == "dbname=from_env"
    monkeypatch.delenv("PGSTORE_DSN")
    target = connection.resolve()
    assert target.conninfo == "" and "PGHOST" in target.source


def test_queue_bodies_and_message_dicts_are_one_encoding() -> None:
    """The feeder (feed_batch) writes a queue body with exactly the keys of
    Message.to_dict()."""
    import re
    from datetime import UTC, datetime

    from pgstore.messages import Message
    from pgstore.migrate import function_files

    (feed_batch,) = [p for p in function_files() if p.stem == "feed_batch"]
    body = re.search(r"jsonb_build_object\((.*?)\) ORDER BY", feed_batch.read_text(), re.S)
    assert body is not None
    keys = re.findall(r"'(\w+)',", body.group(1))
    message = Message(uuid.uuid4(), "a-1", "T", 0, 0, {}, None, datetime.now(UTC))
    assert keys == list(message.to_dict())
