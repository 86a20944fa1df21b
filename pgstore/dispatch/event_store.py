"""Subscription type `event_store`: read the category, advance a position with the effects."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore.dispatch.dead_letters import TableDeadLetters
from pgstore.dispatch.processing import MessageProcessor, Outcome
from pgstore.errors import PgstoreError
from pgstore.messages import Message
from pgstore.queries import QUERIES

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.handlers import HandlerSpec
    from pgstore.subscriptions import SubscriptionConfig

logger = logging.getLogger(__name__)


class StalePosition(PgstoreError):
    """A handler's position moved under a batch; the batch was rolled back."""


class EventStoreSubscription:
    """One handler reading its category through the store's gap-safe read.

    Each tick is one transaction: lock the handler's position row, read up to
    messages_per_tick messages from it, run the handler on each (a savepoint each),
    and move the position past what was handled, so the position and the handler's
    writes commit together or not at all.
    """

    def __init__(self, domain: Domain, spec: HandlerSpec, config: SubscriptionConfig) -> None:
        self.domain = domain
        self.spec = spec
        self.config = config
        self.dead_letters = TableDeadLetters(spec.name)
        self.processor = MessageProcessor(domain, spec, config, self.dead_letters)
        self.not_before = 0.0  # monotonic time before which a failed message is not retried
        self.retrying = False  # a failed message waits for its next attempt

    def start(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            QUERIES["position_register"],
            {"handler": self.spec.name, "category": self.spec.stream_category},
        )
        self.processor.load_failures(conn)

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        """Handle the next batch; return how much happened (messages passed, attempts)."""
        if time.monotonic() < self.not_before:
            return 0
        with conn.transaction():
            # SKIP LOCKED: a handler runs in one dispatcher at a time (its order is the
            # category's global order); others skip it and take over if that one dies.
            row = conn.execute(QUERIES["position_lock"], {"handler": self.spec.name}).fetchone()
            if row is None:
                return 0
            self.retrying = False
            start = position = int(row[0])
            replayed = self._replay_dead_letters(conn)
            messages = self.domain.store.read_category(
                self.spec.stream_category, position, self.config.messages_per_tick, conn=conn
            )
            handled = 0
            if not self.retrying:

                def advance(index: int, outcome: Outcome) -> bool:
                    nonlocal handled, position
                    if outcome is Outcome.RETRY:
                        # Commit what came before and the attempt count; retry later.
                        self.retrying = True
                        self.not_before = time.monotonic() + self.config.retry_delay_seconds
                        return True
                    handled += outcome is Outcome.HANDLED
                    position = messages[index].global_position + 1
                    return False

                self.processor.process_batch(conn, messages, on_outcome=advance)
            if position > start:
                advanced = conn.execute(
                    QUERIES["position_advance"], {"handler": self.spec.name, "position": position}
                ).rowcount
                if advanced != 1:  # forward-only: never move back, fail loudly if stale
                    raise StalePosition(
                        f"{self.spec.name}: position moved past {position} during the batch"
                    )
        passed = sum(1 for message in messages if message.global_position < position)
        if passed:
            logger.info(
                "%s: %d handled, %d passed, position %d", self.spec.name, handled, passed, position
            )
        return int(self.retrying) + replayed + passed

    def _replay_dead_letters(self, conn: psycopg.Connection[Any]) -> int:
        """Run the handler again on the dead letters `pgstore dlq replay` marked."""
        rows = conn.execute(QUERIES["dead_letter_replays"], {"handler": self.spec.name}).fetchall()
        for row in rows:
            message = Message(*row)
            outcome = self.processor.process(conn, message)
            if outcome is Outcome.RETRY:
                self.retrying = True
                self.not_before = time.monotonic() + self.config.retry_delay_seconds
                break
            if outcome is not Outcome.DEAD:  # a dead one was written back, replay flag cleared
                conn.execute(
                    QUERIES["dead_letter_delete"],
                    {"handler": self.spec.name, "message_id": message.id},
                )
            logger.info(
                "%s: replayed dead letter %s: %s", self.spec.name, message.id, outcome.value
            )
        return len(rows)
