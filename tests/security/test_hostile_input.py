"""The worst input the database accepts: refused up front, with a clear error and exit code."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from pgstore.cli import Exit
from pgstore.errors import InvalidMessage, InvalidName
from pgstore.messages import NewMessage
from pgstore.store import EventStore
from tests.acceptance.test_cli import pgstore

Conn = psycopg.Connection[Any]


def nested(depth: int) -> Any:
    """A JSON object `depth` levels deep (the object itself is level 1)."""
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def append_sql(conn: Conn, *, data: str, metadata: str = "NULL") -> None:
    conn.execute(
        "SELECT pgstore.append_messages('order-1', ARRAY[gen_random_uuid()], ARRAY['T'],"
        f" {data}, {metadata})"
    )


@pytest.mark.parametrize(
    "metadata",
    [
        """'[0:0]={"[1,2,3]"}'::jsonb[]""",  # a JSON array, at index 0 instead of 1
        "array_fill(repeat('x', 5000000)::text::jsonb, ARRAY[1], ARRAY[0])",
        "array_fill(jsonb_build_object('big', repeat('x', 5000000)), ARRAY[1], ARRAY[0])",
        """ARRAY[['{}'::jsonb]]""",  # two dimensions
    ],
)
def test_array_bounds_cannot_hide_metadata(conn: Conn, metadata: str) -> None:
    with pytest.raises(psycopg.Error) as caught:
        append_sql(conn, data="ARRAY['{}'::jsonb]", metadata=metadata)
    assert caught.value.sqlstate in ("PS005", "22P02"), caught.value
    assert conn.execute("SELECT count(*) FROM pgstore.messages").fetchone() == (0,)


def test_data_arrays_are_checked_the_same_way(conn: Conn) -> None:
    with pytest.raises(psycopg.Error) as caught:
        append_sql(conn, data="""'[0:0]={"[1]"}'::jsonb[]""")
    assert caught.value.sqlstate == "PS005"


def test_depth_limit_is_exact(store: EventStore) -> None:
    store.append("order-1", NewMessage("Deep", nested(100), nested(100)))
    with pytest.raises(InvalidMessage, match="nested too deeply"):
        store.append("order-1", NewMessage("Deeper", nested(101)))
    with pytest.raises(InvalidMessage, match="nested too deeply"):
        store.append("order-1", NewMessage("Deeper", {}, nested(101)))
    # Deeper than Python's own encoder can go: refused before it reaches the server.
    with pytest.raises(InvalidMessage, match="nested too deeply"):
        store.append("order-1", NewMessage("Deepest", nested(5000)))
    assert [m.type for m in store.read_stream("order-1")] == ["Deep"]


def test_depth_is_checked_on_documents_sent_as_sql(conn: Conn) -> None:
    deep = "(repeat('[', 2000) || repeat(']', 2000))::jsonb"
    with pytest.raises(psycopg.Error) as caught:
        append_sql(conn, data=f"ARRAY[jsonb_build_object('a', {deep})]")
    assert caught.value.sqlstate == "PS005"


def test_a_stream_name_too_long_for_the_index_is_refused_up_front(store: EventStore) -> None:
    name = "ordér-" + "語" * 494  # 500 characters, 1,488 bytes
    with pytest.raises(InvalidName, match="1000 bytes"):
        store.append(name, NewMessage("T", {}))
    with pytest.raises(InvalidName, match="1000 bytes"):
        store.append("order-1", NewMessage("語" * 400, {}))


def test_cli_refuses_hostile_numbers_and_documents(dsn: str) -> None:
    cases: list[tuple[list[str], int]] = [
        (["append", "order-1", "T", '{"a":' * 2999 + "{}" + "}" * 2999], Exit.INVALID_INPUT),
        (["append", "order-1", "T", json.dumps(nested(101))], Exit.INVALID_INPUT),
        (["append", "order-1", "T", "--expected-version", "1e20"], Exit.INVALID_INPUT),
        (["append", "order-1", "T", "--expected-version", "9" * 20], Exit.INVALID_INPUT),
        (["append", "order-1", "T", "--expected-version", "-2"], Exit.INVALID_INPUT),
        (["read", "order", "--limit", "1e20"], Exit.INVALID_INPUT),
        (["read", "order", "--limit", "0"], Exit.INVALID_INPUT),
        (["read", "order", "--from", "99999999999999999999"], Exit.INVALID_INPUT),
        (["read", "ordér-" + "語" * 494], Exit.INVALID_INPUT),
        (["query", "SELECT 1", "--timeout", "0"], Exit.INVALID_INPUT),
        (["query", "SELECT 1", "--limit", "1e20"], Exit.INVALID_INPUT),
        (["query", "SELECT ts_stat('SELECT 1')"], Exit.INVALID_INPUT),
        (["dlq", "list", "Handler\\"], Exit.CONFIGURATION),
        (["replay", "Handler\\", "--from", "0", "--yes"], Exit.CONFIGURATION),
    ]
    for args, code in cases:
        result = pgstore(*args, dsn=dsn)
        assert result.returncode == code, (args, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr, args
        assert result.stderr.strip(), args


def test_a_statement_timeout_is_not_database_unavailable(dsn: str) -> None:
    result = pgstore(
        "query", "SELECT count(*) FROM generate_series(1, 1000000000)", "--timeout", "0.2", dsn=dsn
    )
    assert result.returncode == Exit.TIMEOUT, result.stderr
    assert "statement timeout" in result.stderr


def test_handler_names_with_backslashes_work(dsn: str, conn: Conn) -> None:
    conn.execute(
        "INSERT INTO pgstore.handler_positions (handler, category) VALUES ('app.Odd\\', 'x')"
    )
    for name in ("app.Odd\\", "Odd\\"):
        listed = pgstore("dlq", "list", name, dsn=dsn)
        assert listed.returncode == 0, listed.stderr
        rewound = pgstore("replay", name, "--from", "0", "--yes", dsn=dsn)
        assert rewound.returncode == 0, rewound.stderr
