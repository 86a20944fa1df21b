"""EventStore against a real PostgreSQL: appends, reads, versions, bad input."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from pgstore.errors import (
    DuplicateMessageId,
    InvalidArgument,
    InvalidMessage,
    InvalidName,
    PayloadTooLarge,
    WrongExpectedVersion,
)
from pgstore.messages import NewMessage
from pgstore.store import EventStore


def msg(type: str = "Happened", **data: object) -> NewMessage:
    return NewMessage(type, dict(data))


def test_positions_are_gap_free_from_zero(store: EventStore) -> None:
    store.append("order-1", msg(n=0))
    store.append("order-1", [msg(n=1), msg(n=2)])
    store.append("order-2", msg(n=0))
    store.append("order-1", msg(n=3))

    messages = store.read_stream("order-1")
    assert [m.position for m in messages] == [0, 1, 2, 3]
    assert [m.data["n"] for m in messages] == [0, 1, 2, 3]
    assert store.stream_version("order-1") == 3
    assert store.stream_version("order-3") is None


def test_batch_is_atomic_and_ordered(store: EventStore) -> None:
    appended = store.append("order-1", [msg("A"), msg("B"), msg("C")])
    assert [a.position for a in appended] == [0, 1, 2]
    globals_ = [a.global_position for a in appended]
    assert globals_ == sorted(globals_) and len(set(globals_)) == 3

    with pytest.raises(InvalidMessage):
        store.append("order-1", [msg("D"), NewMessage("E", [1, 2])])  # type: ignore[arg-type]
    assert store.stream_version("order-1") == 2


def test_expected_version(store: EventStore) -> None:
    store.append("order-1", msg(), expected_version=-1)
    store.append("order-1", msg(), expected_version=0)
    with pytest.raises(WrongExpectedVersion) as caught:
        store.append("order-1", msg(), expected_version=0)
    assert "Wrong expected version: 0 (Stream: order-1, Stream Version: 1)" in str(caught.value)
    assert caught.value.diagnostic is not None
    assert caught.value.diagnostic.sqlstate == "PS001"
    with pytest.raises(WrongExpectedVersion):
        store.append("order-1", msg(), expected_version=-1)
    assert store.stream_version("order-1") == 1


def test_idempotent_reappend_returns_original_positions(store: EventStore) -> None:
    first = msg("A")
    batch = [msg("B"), msg("C")]
    original = store.append("order-1", first, expected_version=-1)
    original_batch = store.append("order-1", batch, expected_version=0)

    assert store.append("order-1", first, expected_version=-1) == original
    assert store.append("order-1", first) == original
    assert store.append("order-1", batch, expected_version=0) == original_batch
    assert store.stream_version("order-1") == 2
    assert len(store.read_stream("order-1")) == 3


def test_duplicate_id_elsewhere_is_refused(store: EventStore) -> None:
    first, second = msg("A"), msg("B")
    store.append("order-1", first)
    with pytest.raises(DuplicateMessageId):
        store.append("order-2", first)
    with pytest.raises(DuplicateMessageId):  # part of a batch was appended before
        store.append("order-1", [first, second])
    with pytest.raises(DuplicateMessageId):  # the same id twice in one batch
        store.append("order-3", [second, second])
    assert store.stream_version("order-2") is None
    assert store.stream_version("order-3") is None


@pytest.mark.parametrize(
    "stream_name",
    ["", "order", "-1", "order-", "x" * 501 + "-1", "order-1\n", "ord\x00er-1"],
)
def test_bad_stream_names_are_refused(store: EventStore, stream_name: str) -> None:
    with pytest.raises((InvalidName, ValueError)):
        store.append(stream_name, msg())
    assert store.read_all() == []


def test_bad_reads_are_refused(store: EventStore) -> None:
    with pytest.raises(InvalidName):
        store.read_stream("order")
    with pytest.raises(InvalidName):
        store.read_category("order-1")
    with pytest.raises(InvalidArgument):
        store.read_category("order", consumer_group=(2, 2))
    with pytest.raises(InvalidArgument):
        store.read_category("order", limit=0)


@pytest.mark.parametrize("data", [[1, 2], "text", 3, None])
def test_non_object_data_is_refused(store: EventStore, data: object) -> None:
    with pytest.raises(InvalidMessage):
        store.append("order-1", NewMessage("A", data))  # type: ignore[arg-type]
    assert store.stream_version("order-1") is None


def test_oversized_payload_is_refused(store: EventStore) -> None:
    big = {"blob": "x" * (1024 * 1024 + 1)}
    with pytest.raises(PayloadTooLarge):
        store.append("order-1", NewMessage("A", big))
    store.append("order-1", NewMessage("A", {"blob": "x" * 1000}))
    assert store.stream_version("order-1") == 0


def test_bad_message_type_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidName):
        store.append("order-1", NewMessage("", {}))


def test_read_category_and_all(store: EventStore) -> None:
    store.append("order-1", msg("A"))
    store.append("invoice-1", msg("B"))
    store.append("order-2", [msg("C"), msg("D")])

    order = store.read_category("order")
    assert [m.type for m in order] == ["A", "C", "D"]
    assert all(m.category == "order" for m in order)
    assert [m.type for m in store.read_category("order", order[1].global_position)] == ["C", "D"]
    assert [m.type for m in store.read_category("order", limit=2)] == ["A", "C"]
    assert [m.type for m in store.read_all()] == ["A", "B", "C", "D"]
    assert store.read_category("nothing") == []


def test_last_message(store: EventStore) -> None:
    assert store.last_message("order-1") is None
    store.append("order-1", [msg("A", n=1), msg("B", n=2), msg("A", n=3)])
    last = store.last_message("order-1")
    assert last is not None and last.data == {"n": 3}
    last_b = store.last_message("order-1", "B")
    assert last_b is not None and last_b.position == 1


def test_consumer_groups_partition_streams_exactly(store: EventStore) -> None:
    streams = [f"order-{i}" for i in range(40)] + [f"order-{i}+extra" for i in range(5)]
    for name in streams:
        store.append(name, msg())
    everything = {m.id for m in store.read_category("order")}

    size = 3
    seen: list[set[uuid.UUID]] = []
    for member in range(size):
        part = store.read_category("order", consumer_group=(member, size))
        seen.append({m.id for m in part})
        # Compound ids share their cardinal id's member.
        members = {m.stream_name.split("-", 1)[1].split("+")[0] for m in part}
        others = {
            m.stream_name.split("-", 1)[1].split("+")[0]
            for m in store.read_category("order")
            if m.id not in seen[-1]
        }
        assert not members & others
    assert set().union(*seen) == everything
    assert sum(len(s) for s in seen) == len(everything)
    assert all(seen)


def test_correlation_filter(store: EventStore) -> None:
    store.append("order-1", NewMessage("A", {}, {"correlationStreamName": "checkout-7"}))
    store.append("order-2", NewMessage("B", {}, {"correlationStreamName": "cart-7"}))
    store.append("order-3", NewMessage("C", {}))
    assert [m.type for m in store.read_category("order", correlation="checkout")] == ["A"]


def test_reader_never_passes_a_transaction_that_commits_late(store: EventStore, dsn: str) -> None:
    """A message that commits after a later-started one is not skipped by a reader."""
    with psycopg.connect(dsn) as slow:
        # The slow writer gets its transaction id (and global positions) first...
        store.append("order-1", msg("Slow"), conn=slow)
        # ...the fast writer commits first.
        store.append("order-2", msg("Fast"))

        before = store.read_category("order")
        assert before == []  # the horizon stops below the still-open slow writer
        slow.commit()

    after = store.read_category("order")
    assert [m.type for m in after] == ["Slow", "Fast"]


def test_stream_order_follows_global_order(store: EventStore, dsn: str) -> None:
    """A transaction with an older id appends behind a newer one in the same stream:
    its message still sorts after the newer one's, in the stream and in global order."""
    with psycopg.connect(dsn) as older:
        store.append("audit-1", msg("Audit"), conn=older)  # takes its transaction id now
        store.append("order-1", msg("Newer"))  # a newer transaction, committed
        store.append("order-1", msg("Older"), conn=older)
        assert store.read_category("order") == []  # the older transaction is still open
    stream = store.read_stream("order-1")
    assert [m.type for m in stream] == ["Newer", "Older"]
    assert [m.type for m in store.read_category("order")] == ["Newer", "Older"]
    assert stream[0].global_position < stream[1].global_position
    # Its other message keeps its own, older range.
    (audit,) = store.read_stream("audit-1")
    assert audit.global_position >> 16 < stream[0].global_position >> 16


def test_concurrent_appenders_with_same_expected_version(store: EventStore, dsn: str) -> None:
    """Two appenders expecting the same version: exactly one wins."""
    store.append("order-1", msg())
    first = psycopg.connect(dsn)
    store.append("order-1", msg("First"), expected_version=0, conn=first)
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            store.append("order-1", msg("Second"), expected_version=0)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second appender should wait for the first to commit"
    first.commit()
    first.close()
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], WrongExpectedVersion)
    assert [m.type for m in store.read_stream("order-1")][1:] == ["First"]


def test_the_store_finds_its_database_as_the_cli_does(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSTORE_DSN", dsn)
    with EventStore() as store:
        store.append("order-1", msg("Found"))
        assert [m.type for m in store.read_stream("order-1")] == ["Found"]
