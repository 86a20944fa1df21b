"""pgstore.read_queue: first in, first out per stream, one reader per stream at a time."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[Any]
STREAMS = ("a", "b", "c")


@pytest.fixture
def queue(conn: Conn) -> str:
    """A queue of 30 messages, ten per stream, interleaved a, b, c, a, b, c, ..."""
    conn.execute("SELECT pgmq.create('fifo')")
    order = [STREAMS[n % 3] for n in range(30)]
    conn.execute(
        "SELECT pgmq.send_batch('fifo', %s::jsonb[], %s::jsonb[])",
        (
            [Jsonb({"stream": stream, "n": n}) for n, stream in enumerate(order)],
            [Jsonb({"x-pgmq-group": stream}) for stream in order],
        ),
    )
    return "fifo"


def read(conn: Conn, queue: str, qty: int) -> list[tuple[str, int]]:
    rows = conn.execute(
        "SELECT message FROM pgstore.read_queue(%s, 30, %s) ORDER BY msg_id", (queue, qty)
    ).fetchall()
    return [(body["stream"], body["n"]) for (body,) in rows]


def test_a_read_takes_the_oldest_streams_in_order(conn: Conn, queue: str) -> None:
    assert read(conn, queue, 4) == [("a", 0), ("a", 3), ("a", 6), ("a", 9)]
    expected = [("b", n) for n in range(1, 30, 3)] + [("c", 2), ("c", 5)]
    assert read(conn, queue, 12) == sorted(expected, key=lambda message: message[1])


def test_a_stream_with_a_message_out_is_not_handed_out(conn: Conn, queue: str) -> None:
    read(conn, queue, 2)  # a's first two are out: a's later ones wait for them
    assert {stream for stream, _ in read(conn, queue, 100)} == {"b", "c"}
    assert read(conn, queue, 100) == []  # every stream has a message out
    conn.execute(  # a's two are dealt with: a is free again, from its next message
        "SELECT pgmq.delete('fifo', array_agg(msg_id)) FROM pgmq.q_fifo"
        " WHERE message->>'stream' = 'a' AND read_ct = 1 AND (message->>'n')::int < 6"
    )
    assert read(conn, queue, 1) == [("a", 6)]


def test_two_readers_never_share_a_stream(dsn: str, conn: Conn, queue: str) -> None:
    """The first reader has not committed yet: the second skips its stream rather
    than hand out a later message of it, or wait."""
    with psycopg.connect(dsn) as first:
        assert read(first, queue, 2) == [("a", 0), ("a", 3)]  # in an open transaction
        second = read(conn, queue, 100)
        first.commit()
    assert second and "a" not in {stream for stream, _ in second}


def test_only_a_queue_pgstore_trusts_is_read(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable, match="No pgstore queue nowhere"):
        conn.execute("SELECT * FROM pgstore.read_queue('nowhere', 30, 1)")
