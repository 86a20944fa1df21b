"""Subscription type `event_store`: read the category, advance a position with the effects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore import replica, tracing
from pgstore._queries import QUERIES
from pgstore.dispatch.dead_letters import TableDeadLetters
from pgstore.dispatch.processing import Item, Outcome, message_of
from pgstore.dispatch.subscription import Session, Subscription
from pgstore.errors import StalePosition
from pgstore.messages import Undecodable, decode

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.handlers import HandlerSpec
    from pgstore.subscriptions import SubscriptionConfig

logger = logging.getLogger(__name__)


def decode_item(row: tuple[Any, ...]) -> Item:
    """A message from its encoded columns, or the Undecodable that stands for it."""
    try:
        return decode(*row)
    except Undecodable as unreadable:
        return unreadable


@dataclass(frozen=True)
class Slice:
    """The share of the category a batch covers: all of it, or one partition."""

    partition: int | None = None
    partitions: int | None = None

    @property
    def params(self) -> dict[str, int | None]:
        return {"partition": self.partition, "partitions": self.partitions}

    @property
    def label(self) -> str:
        return "" if self.partition is None else f" [partition {self.partition}/{self.partitions}]"


WHOLE = Slice()


@dataclass(frozen=True)
class Batch:
    """What one batch did: how much happened, and the streams it holds back (seconds
    until each is due)."""

    worked: int
    held: dict[str, float]


class EventStoreSubscription(Subscription):
    """One handler reading its category through the store's gap-safe read.

    Each tick is one transaction: lock the handler's position row, try again the
    messages of held-back streams that are due, read up to messages_per_tick new
    messages from the position, run the handler on each, and move the position past
    all of them, so the position and the handler's writes commit together or not at all.

    With `partitions` N > 1 the category is split by stream into N partitions, each
    with its own position row, and each tick runs one batch of every partition no
    other worker holds: N workers share the handler, a stream stays in one partition
    and in order, and a worker that dies releases its partition with its transaction.

    A message that fails holds back its own stream only: it is parked (a row of
    pgstore.handler_parked, with the time of its next attempt), and so is every later
    message of that stream the handler would run, in order, while the rest of the
    category goes on. Parking happens in the same transaction as the position move, so
    a crash forgets nothing. When the failed message succeeds (or goes to the dead
    letters), the stream's parked messages run in order and the stream is released.
    """

    def __init__(self, domain: Domain, spec: HandlerSpec, config: SubscriptionConfig) -> None:
        super().__init__(domain, spec, config, TableDeadLetters(spec.name))
        self._resplit = False  # the setting asks for a split the database does not have
        self._reader: psycopg.Connection[Any] | None = None  # a standby to read from

    def start(self, conn: psycopg.Connection[Any], session: Session) -> None:
        conn.execute(
            QUERIES["position_register"],
            {"handler": self.spec.name, "category": self.spec.stream_category},
        )
        self._reader = session.reader
        self._split(conn)
        self.processor.load_failures(conn)

    def _split(self, conn: psycopg.Connection[Any], *, quiet: bool = False) -> None:
        """Split the category into the configured number of partitions (1: none), if
        it is not split so already.

        The database's split is the one every worker follows; the setting only asks
        for a new one. From one position to N is exact at any time (each partition
        starts where the handler was). Any other change needs every partition caught
        up to the horizon, so that the new split can start there with nothing behind
        it; until then the handler keeps its split, says so (unless `quiet`), and tries
        again whenever a tick finds nothing new.
        """
        wanted = self.config.partitions
        params = {"handler": self.spec.name}
        row = conn.execute(QUERIES["partitions_of"], params).fetchone()
        self._resplit = (int(row[0]) if row else 1) != wanted
        if not self._resplit:
            return
        with conn.transaction():
            # Waits for the batches in progress (of every worker) and holds them off.
            locked = conn.execute(QUERIES["partitions_lock_all"], params).fetchone()
            counted = conn.execute(QUERIES["partitions_count"], params).fetchone()
            assert locked is not None and counted is not None
            position, category, count = int(locked[0]), str(locked[1]), int(counted[0])
            if count == wanted or (count == 0 and wanted == 1):
                self._resplit = False
                return  # another worker did it meanwhile
            if count:
                conn.execute(QUERIES["partitions_lock_rows"], params)
                caught_up = conn.execute(
                    QUERIES["partitions_caught_up"], {**params, "category": category}
                ).fetchone()
                if caught_up is None or caught_up[0] is None:
                    if quiet:
                        return
                    logger.warning(
                        "%s: its category is split into %d partitions and the setting asks "
                        "for %d; the new split waits until every partition has caught up "
                        "(the handler runs on the old split until then)",
                        self.spec.name, count, wanted,
                    )  # fmt: skip
                    return
                position = int(caught_up[0])
                conn.execute(QUERIES["partitions_delete"], params)
                conn.execute(QUERIES["position_set"], {**params, "position": position})
            self._resplit = False
            if wanted > 1:
                conn.execute(
                    QUERIES["partitions_create"],
                    {**params, "partitions": wanted, "position": position},
                )
            logger.info(
                "%s: category split into %d partition(s) at global position %d",
                self.spec.name, wanted, position,
            )  # fmt: skip

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        """Handle what is due and the next batch (of each partition this worker can
        take, for a handler whose category is split); return how much happened."""
        batches = self._tick_whole(conn)
        if batches is None:  # not to be run whole now: split, or another worker has it
            split = conn.execute(QUERIES["partitions_of"], {"handler": self.spec.name})
            batches = self._tick_partitions(conn) if split.fetchone() else []
        held = [wait for batch in batches for wait in batch.held.values()]
        self.pending = bool(held)
        self.due_in(min(held) if held else None)
        worked = sum(batch.worked for batch in batches)
        if self._resplit and not worked:  # nothing new: perhaps caught up for the new split
            self._split(conn, quiet=True)
        return worked

    def _tick_whole(self, conn: psycopg.Connection[Any]) -> list[Batch] | None:
        """A batch of the whole category; None if its position row is not to be had
        (the category is split into partitions, or another worker holds it)."""
        with conn.transaction():
            # SKIP LOCKED: a handler runs in one dispatcher at a time (its order is the
            # category's global order); others skip it and take over if that one dies.
            row = conn.execute(QUERIES["position_lock"], {"handler": self.spec.name}).fetchone()
            batch = None if row is None else self._batch(conn, int(row[0]), WHOLE)
            return None if batch is None else [batch]

    def _tick_partitions(self, conn: psycopg.Connection[Any]) -> list[Batch]:
        """One batch of each partition no other worker holds, each in a transaction of
        its own that holds the partition's row: workers share the handler, and a stream
        (always in the same partition) is run by one of them at a time, in order."""
        done: list[int] = []
        batches: list[Batch] = []
        while True:
            with conn.transaction():
                row = conn.execute(
                    QUERIES["partition_lock"], {"handler": self.spec.name, "done": done}
                ).fetchone()
                if row is None:
                    return batches
                partition, partitions, position = (int(value) for value in row)
                done.append(partition)
                batch = self._batch(conn, position, Slice(partition, partitions))
                assert batch is not None  # a partition's batch is never refused
                batches.append(batch)

    def _batch(self, conn: psycopg.Connection[Any], start: int, part: Slice) -> Batch | None:
        """Inside the caller's transaction, which holds the position's lock: run what
        is due, then the next messages from `start`, and move the position past them.
        None: the whole category was asked for and it turns out to be split."""
        # One look for the rare work (replays asked for, streams held back) before
        # the queries that fetch it: a round trip saved on almost every batch.
        replays, parked, split = conn.execute(
            QUERIES["handler_side_work"], {"handler": self.spec.name}
        ).fetchone() or (False, False, False)
        if split and part is WHOLE:
            # position_lock judged "not split" in the snapshot its statement began
            # with; a split that committed before it took the row's lock is seen
            # only now. The lock held now keeps any later split out, so this look
            # (a new statement) is the one that counts.
            return None
        replayed = self._replay_dead_letters(conn, part) if replays else 0
        held = self._held(conn, part) if parked else {}
        due = [stream for stream, wait in held.items() if wait <= 0]
        retried = self._retry_parked(conn, due) if due else 0
        if retried:
            held = self._held(conn, part)
        params = {
            "category": self.spec.stream_category,
            "from_global_position": start,
            "batch_size": self.config.messages_per_tick,
            **part.params,
        }
        reader = self._reader
        if reader is None:
            rows = conn.execute(QUERIES["read_category_encoded"], params).fetchall()
        else:  # a standby: below its horizon, a complete prefix (see pgstore.replica)
            rows = replica.retrying_conflicts(
                lambda: reader.execute(QUERIES["read_category_encoded"], params).fetchall()
            )
        items = [decode_item(encoded) for encoded in rows]
        handled = 0

        def park_if_held(index: int) -> bool:
            item = items[index]
            message = message_of(item)
            if message.stream_name in held and self.processor.wants(item):
                self._park(conn, index, items, retry_after=None)
                return True
            return False

        def settle(index: int, outcome: Outcome) -> bool:
            nonlocal handled
            if outcome is Outcome.RETRY:
                self._park(conn, index, items, retry_after=self.config.retry_delay_seconds)
                held[message_of(items[index]).stream_name] = self.config.retry_delay_seconds
            handled += outcome is Outcome.HANDLED
            return False

        if items:
            self.processor.observer.batch(self.spec.name, len(items))
            with tracing.span(f"pgstore.dispatch {self.spec.name}", {"size": len(items)}):
                self.processor.process_batch(conn, items, skip=park_if_held, on_outcome=settle)
            self._advance(conn, message_of(items[-1]).global_position + 1, part)
        elif part.partition is not None:
            conn.execute(
                QUERIES["partition_touch"], {"handler": self.spec.name, "partition": part.partition}
            )
        self.processor.save_conflicts(conn)
        if items:
            logger.info(
                "%s%s: %d handled, %d passed, %d stream(s) held back",
                self.spec.name,
                part.label,
                handled,
                len(items),
                len(held),
            )
        return Batch(replayed + retried + len(items), held)

    def _advance(self, conn: psycopg.Connection[Any], position: int, part: Slice) -> None:
        """Move the position forward only; fail loudly if it is stale."""
        if part.partition is None:
            query, params = "position_advance", {"handler": self.spec.name, "position": position}
        else:
            query = "partition_advance"
            params = {"handler": self.spec.name, "partition": part.partition, "position": position}
        if conn.execute(QUERIES[query], params).rowcount != 1:
            raise StalePosition(
                f"{self.spec.name}{part.label}: position moved past {position} during the batch"
            )

    def _held(self, conn: psycopg.Connection[Any], part: Slice) -> dict[str, float]:
        """Held-back streams (of the part), each with the seconds until its failed
        message is due."""
        rows = conn.execute(
            QUERIES["parked_streams"], {"handler": self.spec.name, **part.params}
        ).fetchall()
        return {str(stream): float(wait) for stream, wait in rows}

    def _park(
        self,
        conn: psycopg.Connection[Any],
        index: int,
        items: list[Item],
        *,
        retry_after: float | None,
    ) -> None:
        message = message_of(items[index])
        conn.execute(
            QUERIES["park"],
            {
                "handler": self.spec.name,
                "global_position": message.global_position,
                "stream_name": message.stream_name,
                "category": self.spec.stream_category,
                "retry_after": retry_after,
            },
        )

    def _retry_parked(self, conn: psycopg.Connection[Any], streams: list[str]) -> int:
        """Run the parked messages of the due streams in order; a stream stops at its
        first message that fails again. Returns how many were run."""
        rows = conn.execute(
            QUERIES["parked_messages"],
            {
                "handler": self.spec.name,
                "streams": streams,
                "limit": self.config.messages_per_tick,
            },
        ).fetchall()
        items = [decode_item(row) for row in rows]
        stopped: set[str] = set()
        ran = 0
        for index, item in enumerate(items):
            message = message_of(item)
            if message.stream_name in stopped:
                continue
            ran += 1
            outcome = self.processor.process(conn, item)
            if outcome is Outcome.RETRY:
                self._park(conn, index, items, retry_after=self.config.retry_delay_seconds)
                stopped.add(message.stream_name)
            else:
                conn.execute(
                    QUERIES["unpark"],
                    {"handler": self.spec.name, "global_position": message.global_position},
                )
        return ran

    def _replay_dead_letters(self, conn: psycopg.Connection[Any], part: Slice) -> int:
        """Run the handler again on the dead letters (of the part's streams) that
        `pgstore dlq replay` marked."""
        rows = conn.execute(
            QUERIES["dead_letter_replays"], {"handler": self.spec.name, **part.params}
        ).fetchall()
        for row in rows:
            item = decode_item(row)
            message = message_of(item)
            outcome = self.processor.process(conn, item)
            if outcome is Outcome.RETRY:
                break  # the letter stays marked: tried again next tick
            if outcome is not Outcome.DEAD:  # a dead one was written back, replay flag cleared
                conn.execute(
                    QUERIES["dead_letter_delete"],
                    {"handler": self.spec.name, "message_id": message.id},
                )
            logger.info(
                "%s: replayed dead letter %s: %s", self.spec.name, message.id, outcome.value
            )
        return len(rows)
