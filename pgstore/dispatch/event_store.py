"""Subscription type `event_store`: read the category, advance a position with the effects."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore import tracing
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


class EventStoreSubscription(Subscription):
    """One handler reading its category through the store's gap-safe read.

    Each tick is one transaction: lock the handler's position row, try again the
    messages of held-back streams that are due, read up to messages_per_tick new
    messages from the position, run the handler on each, and move the position past
    all of them, so the position and the handler's writes commit together or not at all.

    A message that fails holds back its own stream only: it is parked (a row of
    pgstore.handler_parked, with the time of its next attempt), and so is every later
    message of that stream the handler would run, in order, while the rest of the
    category goes on. Parking happens in the same transaction as the position move, so
    a crash forgets nothing. When the failed message succeeds (or goes to the dead
    letters), the stream's parked messages run in order and the stream is released.
    """

    def __init__(self, domain: Domain, spec: HandlerSpec, config: SubscriptionConfig) -> None:
        super().__init__(domain, spec, config, TableDeadLetters(spec.name))

    def start(self, conn: psycopg.Connection[Any], session: Session) -> None:
        conn.execute(
            QUERIES["position_register"],
            {"handler": self.spec.name, "category": self.spec.stream_category},
        )
        self.processor.load_failures(conn)

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        """Handle what is due and the next batch; return how much happened."""
        with conn.transaction():
            # SKIP LOCKED: a handler runs in one dispatcher at a time (its order is the
            # category's global order); others skip it and take over if that one dies.
            row = conn.execute(QUERIES["position_lock"], {"handler": self.spec.name}).fetchone()
            if row is None:
                self.pending = False
                return 0
            start = int(row[0])
            replayed = self._replay_dead_letters(conn)
            held = self._held(conn)
            due = [stream for stream, wait in held.items() if wait <= 0]
            retried = self._retry_parked(conn, due) if due else 0
            if retried:
                held = self._held(conn)
            items = [
                decode_item(encoded)
                for encoded in conn.execute(
                    QUERIES["read_category_encoded"],
                    {
                        "category": self.spec.stream_category,
                        "from_global_position": start,
                        "batch_size": self.config.messages_per_tick,
                    },
                )
            ]
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
            if items:
                position = message_of(items[-1]).global_position + 1
                advanced = conn.execute(
                    QUERIES["position_advance"], {"handler": self.spec.name, "position": position}
                ).rowcount
                if advanced != 1:  # forward-only: never move back, fail loudly if stale
                    raise StalePosition(
                        f"{self.spec.name}: position moved past {position} during the batch"
                    )
            self.processor.save_conflicts(conn)
        self.pending = bool(held)
        self.due_in(min(held.values()) if held else None)
        if items:
            logger.info(
                "%s: %d handled, %d passed, %d stream(s) held back",
                self.spec.name,
                handled,
                len(items),
                len(held),
            )
        return replayed + retried + len(items)

    def _held(self, conn: psycopg.Connection[Any]) -> dict[str, float]:
        """Held-back streams, each with the seconds until its failed message is due."""
        rows = conn.execute(QUERIES["parked_streams"], {"handler": self.spec.name}).fetchall()
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

    def _replay_dead_letters(self, conn: psycopg.Connection[Any]) -> int:
        """Run the handler again on the dead letters `pgstore dlq replay` marked."""
        rows = conn.execute(QUERIES["dead_letter_replays"], {"handler": self.spec.name}).fetchall()
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
