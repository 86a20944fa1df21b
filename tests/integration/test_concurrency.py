"""Several writer processes and a reader advancing while they write: nothing skipped or doubled."""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections import defaultdict

import psycopg

from pgstore.errors import StreamOrderConflict
from pgstore.messages import NewMessage
from pgstore.store import EventStore

WRITERS = 4
TRANSACTIONS_PER_WRITER = 120
STREAMS = 6


def write(dsn: str, seed: int) -> list[str]:
    """Append in transactions that commit in a different order than they began."""
    rng = random.Random(seed)
    written: list[str] = []
    with EventStore.connect(dsn, max_size=1) as store, psycopg.connect(dsn) as conn:
        done = 0
        while done < TRANSACTIONS_PER_WRITER:
            # Sorted, as an application avoids deadlocks between per-stream locks.
            streams = sorted(rng.sample(range(STREAMS), k=rng.choice([1, 1, 2])))
            batch: list[str] = []
            try:
                for stream in streams:
                    messages = [
                        NewMessage("Written", {"writer": seed}) for _ in range(rng.randint(1, 3))
                    ]
                    store.append(f"load-{stream}", messages, conn=conn)
                    batch += [str(m.id) for m in messages]
                    # Hold the transaction open so later transactions commit first.
                    time.sleep(rng.random() * 0.004)
                conn.commit()
            except StreamOrderConflict:
                conn.rollback()  # what the error asks for: retry as a new transaction
                continue
            written += batch
            done += 1
    return written


def test_reader_misses_nothing_while_writers_commit_out_of_order(
    dsn: str, store: EventStore
) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        pending = pool.starmap_async(write, [(dsn, seed) for seed in range(WRITERS)])
        seen: list[tuple[str, str, int]] = []
        position = 0
        deadline = time.monotonic() + 120
        while True:
            finished = pending.ready()
            batch = store.read_category("load", position, limit=37)
            seen += [(str(m.id), m.stream_name, m.position) for m in batch]
            if batch:
                position = batch[-1].global_position + 1
            elif finished:
                break
            assert time.monotonic() < deadline, "writers did not finish in time"
        written = [message_id for ids in pending.get() for message_id in ids]

    seen_ids = [message_id for message_id, _, _ in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a message was read twice"
    assert set(seen_ids) == set(written), "the reader skipped a committed message"
    stored = {str(m.id) for m in store.read_category("load", limit=-1)}
    assert stored == set(written)

    # Per stream: positions gap-free from 0, and the reader met them in order.
    by_stream: dict[str, list[int]] = defaultdict(list)
    for _, stream_name, stream_position in seen:
        by_stream[stream_name].append(stream_position)
    for positions in by_stream.values():
        assert positions == list(range(len(positions)))


def test_idempotent_append_under_concurrency(dsn: str, store: EventStore) -> None:
    """Several processes append the same message ids: each lands exactly once."""
    message_ids = [str(uuid.uuid4()) for _ in range(30)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        pool.starmap(append_ids, [(dsn, message_ids)] * 3)
    stored = store.read_stream("same-1", limit=-1)
    assert sorted(str(m.id) for m in stored) == sorted(message_ids)
    assert [m.position for m in stored] == list(range(len(message_ids)))


def append_ids(dsn: str, message_ids: list[str]) -> None:
    with EventStore.connect(dsn, max_size=1) as store:
        for message_id in message_ids:
            store.append("same-1", NewMessage("Once", {}, id=uuid.UUID(message_id)))
