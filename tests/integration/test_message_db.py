"""Message DB's SQL API, driven by a real Message DB client (message-db-py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from message_db.client import MessageDB  # type: ignore[import-untyped]

from pgstore.migrate import create_message_store_role


@pytest.fixture
def client(conn: psycopg.Connection[Any]) -> Iterator[MessageDB]:
    create_message_store_role(conn)
    info = conn.info
    # As Message DB's clients do: connect as `message_store`, call functions unqualified.
    url = f"postgresql://message_store@{info.host}:{info.port}/{info.dbname}"
    message_db = MessageDB.from_url(url, max_connections=2)
    yield message_db
    message_db.connection_pool.closeall()


def test_write_and_read_back(client: MessageDB) -> None:
    assert client.write("order-1", "Placed", {"n": 1}) == 0
    assert client.write("order-1", "Shipped", {"n": 2}, {"meta": True}, expected_version=0) == 1
    client.write("order-2", "Placed", {"n": 3})

    stream = client.read_stream("order-1")
    assert [(m["position"], m["type"], m["data"]) for m in stream] == [
        (0, "Placed", {"n": 1}),
        (1, "Shipped", {"n": 2}),
    ]
    assert stream[1]["metadata"] == {"meta": True}
    category = client.read_category("order")
    assert [m["type"] for m in category] == ["Placed", "Shipped", "Placed"]
    assert category == sorted(category, key=lambda m: m["global_position"])
    assert client.read_last_message("order-1")["type"] == "Shipped"
    assert client.stream_identifiers("order") == ["1", "2"]


def test_read_everything_through_the_messages_view(client: MessageDB) -> None:
    client.write("order-1", "Placed", {})
    client.write("invoice-1", "Raised", {})
    assert [m["type"] for m in client.read("$all")] == ["Placed", "Raised"]


def test_wrong_expected_version_as_message_db_reports_it(client: MessageDB) -> None:
    client.write("order-1", "Placed", {})
    with pytest.raises(ValueError) as caught:
        client.write("order-1", "Placed", {}, expected_version=5)
    assert str(caught.value) == (
        "P0001-ERROR:  Wrong expected version: 5 (Stream: order-1, Stream Version: 0)"
    )


def test_consumer_groups(client: MessageDB) -> None:
    for i in range(12):
        client.write(f"order-{i}", "Placed", {"i": i})
    members = [
        {
            m["stream_name"]
            for m in client.read_category("order", consumer_group_member=k, consumer_group_size=3)
        }
        for k in range(3)
    ]
    assert set().union(*members) == {f"order-{i}" for i in range(12)}
    assert sum(map(len, members)) == 12


def test_functions_answer_as_message_db(conn: psycopg.Connection[Any]) -> None:
    def one(query: str, *params: object) -> object:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    assert one("SELECT message_store.category('bookstore::order-1+2')") == "bookstore::order"
    assert one("SELECT message_store.id('order-1+2')") == "1+2"
    assert one("SELECT message_store.id('order')") is None
    assert one("SELECT message_store.cardinal_id('order-1+2')") == "1"
    assert one("SELECT message_store.is_category('order')") is True
    assert one("SELECT message_store.hash_64('x')") == one(
        "SELECT left('x' || md5('x'), 17)::bit(64)::bigint"
    )
    assert one("SELECT message_store.message_store_version()") == "1.3.0"

    message_id = str(uuid.uuid4())
    assert one("SELECT message_store.write_message(%s, 'order-1', 'Placed', '{}')", message_id) == 0
    assert one("SELECT message_store.stream_version('order-1')") == 0
    assert one("SELECT message_store.stream_version('order-9')") is None
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "SELECT message_store.write_message(%s, 'order-2', 'Placed', '{}')", (message_id,)
        )
    with pytest.raises(psycopg.errors.RaiseException, match="Must be a category: order-1"):
        conn.execute("SELECT * FROM message_store.get_category_messages('order-1')")
    with pytest.raises(psycopg.errors.RaiseException, match="Must be a stream name: order"):
        conn.execute("SELECT * FROM message_store.get_stream_messages('order')")
    with pytest.raises(psycopg.errors.RaiseException, match="Correlation must be a category"):
        conn.execute("SELECT * FROM message_store.get_category_messages('order', 1, 10, 'x-1')")
    for member, size, text in [
        (1, None, "Consumer group member and size must be specified"),
        (0, 0, "Consumer group size must not be less than 1"),
        (-1, 2, "Consumer group member must not be less than 0"),
        (2, 2, "Consumer group member must be less than the group size"),
    ]:
        with pytest.raises(psycopg.errors.RaiseException, match=text):
            conn.execute(
                "SELECT * FROM message_store.get_category_messages('order', 1, 10, NULL, %s, %s)",
                (member, size),
            )


def test_condition_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="not supported by pgstore"):
        conn.execute(
            "SELECT * FROM message_store.get_category_messages('order', 1, 10, NULL, NULL, NULL, "
            "'1=1; DROP TABLE pgstore.messages')"
        )
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute("SELECT * FROM message_store.get_stream_messages('order-1', 0, 10, 'true')")


def test_result_row_shape(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "SELECT message_store.write_message(gen_random_uuid()::text, 'order-1', 'A', '{\"a\": 1}')"
    )
    cursor = conn.execute("SELECT * FROM message_store.get_stream_messages('order-1')")
    assert [(d.name, d.type_code) for d in cursor.description or []] == [
        ("id", 1043),
        ("stream_name", 1043),
        ("type", 1043),
        ("position", 20),
        ("global_position", 20),
        ("data", 1043),
        ("metadata", 1043),
        ("time", 1114),
    ]
    row = cursor.fetchone()
    assert row is not None and row[5] == '{"a": 1}' and row[6] is None
