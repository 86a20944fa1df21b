"""Running one message through one handler: savepoint, retries counted durably, dead letters."""

from __future__ import annotations

import enum
import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore import unit_of_work
from pgstore.dispatch.dead_letters import DeadLetter, DeadLetters
from pgstore.envelope import origin_stream
from pgstore.handlers import HandlerSpec
from pgstore.messages import Message
from pgstore.model import ValidationError
from pgstore.queries import QUERIES

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.subscriptions import SubscriptionConfig

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    HANDLED = "handled"
    SKIPPED = "skipped"  # nothing in this handler handles it
    RETRY = "retry"  # failed; will be attempted again
    DEAD = "dead"  # failed for the last time: dead-lettered (or dropped, enable_dlq=False)


class Undeliverable(Exception):
    """The message cannot become an event of this domain; retrying will not help."""


class _RollBack(Exception):
    """Leaves the batch savepoint, rolling it back."""


class MessageProcessor:
    """Applies one handler to messages, inside the caller's transaction.

    Both subscription types use it, so retries, handle_error and dead letters mean
    the same thing in both.
    """

    def __init__(
        self,
        domain: Domain,
        spec: HandlerSpec,
        config: SubscriptionConfig,
        dead_letters: DeadLetters,
    ) -> None:
        self.domain = domain
        self.spec = spec
        self.config = config
        self.dead_letters = dead_letters
        self._failed: set[str] = set()  # message ids with a failure row to clear on success

    def load_failures(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(
            "SELECT message_id FROM pgstore.handler_failures WHERE handler = %s", (self.spec.name,)
        ).fetchall()
        self._failed = {str(row[0]) for row in rows}

    def wants(self, message: Message) -> bool:
        """Whether this handler handles the message at all (type, and source_stream)."""
        return bool(self.spec.methods_for(message.type)) and self.spec.accepts_origin(
            origin_stream(message)
        )

    def process(
        self, conn: psycopg.Connection[Any], message: Message, *, attempt: int | None = None
    ) -> Outcome:
        """Run the handler on `message`. `attempt`: a durable attempt number the caller
        already has (pgmq's read count), else pgstore counts attempts itself."""
        if not self.wants(message):
            return Outcome.SKIPPED
        try:
            # A savepoint per message: a failure undoes this message's effects only.
            with conn.transaction(), unit_of_work.joined(unit_of_work.UnitOfWork(conn, message)):
                self._call(message)
        except Undeliverable as error:
            return self.fail(conn, message, error, attempt=attempt, final=True)
        except Exception as error:
            if isinstance(error, psycopg.OperationalError) or conn.broken:
                raise  # the connection failed, not the handler: reconnect and retry
            return self.fail(conn, message, error, attempt=attempt, final=False)
        if str(message.id) in self._failed:
            conn.execute(
                QUERIES["failure_clear"], {"handler": self.spec.name, "message_id": message.id}
            )
            self._failed.discard(str(message.id))
        return Outcome.HANDLED

    def process_batch(
        self,
        conn: psycopg.Connection[Any],
        messages: list[Message],
        *,
        attempts: list[int | None] | None = None,
        skip: Callable[[int], bool] = lambda _: False,
        on_outcome: Callable[[int, Outcome], bool],
    ) -> None:
        """Run the handler on each message in order, inside the caller's transaction.

        A savepoint per message costs two round trips, so while every message
        succeeds one savepoint covers the rest of the batch. When one fails, that
        savepoint is rolled back, the messages before it run again each in its own
        savepoint (their effects were undone with it), and the failure is counted
        without running the failed message a second time. `on_outcome(index, outcome)`
        hears every outcome in order and returns True to stop the batch; `skip(index)`
        leaves a message out (reported as nothing).
        """
        attempts = attempts or [None] * len(messages)
        start = 0
        while start < len(messages):
            handled: list[tuple[int, Outcome]] = []
            failure: tuple[int, Exception] | None = None
            try:
                with conn.transaction():
                    for index in range(start, len(messages)):
                        message = messages[index]
                        if skip(index):
                            continue
                        if not self.wants(message):
                            handled.append((index, Outcome.SKIPPED))
                            continue
                        try:
                            with unit_of_work.joined(unit_of_work.UnitOfWork(conn, message)):
                                self._call(message)
                        except Exception as caught:
                            if isinstance(caught, psycopg.OperationalError) or conn.broken:
                                raise
                            failure = (index, caught)
                            raise _RollBack from caught
                        handled.append((index, Outcome.HANDLED))
            except _RollBack:
                pass
            if failure is None:
                for index, outcome in handled:
                    if self._report(conn, messages[index], outcome, on_outcome, index):
                        return
                return
            failed, failed_with = failure
            for index in range(start, failed):  # undone with the savepoint: again, one by one
                if skip(index):
                    continue
                outcome = self.process(conn, messages[index], attempt=attempts[index])
                if on_outcome(index, outcome):
                    return
            outcome = self.fail(
                conn, messages[failed], failed_with, attempt=attempts[failed],
                final=isinstance(failed_with, Undeliverable),
            )  # fmt: skip
            if on_outcome(failed, outcome):
                return
            start = failed + 1

    def _report(
        self,
        conn: psycopg.Connection[Any],
        message: Message,
        outcome: Outcome,
        on_outcome: Callable[[int, Outcome], bool],
        index: int,
    ) -> bool:
        if outcome is Outcome.HANDLED and str(message.id) in self._failed:
            conn.execute(
                QUERIES["failure_clear"], {"handler": self.spec.name, "message_id": message.id}
            )
            self._failed.discard(str(message.id))
        return on_outcome(index, outcome)

    def _call(self, message: Message) -> None:
        event_class = self.spec.event_classes.get(message.type) or self.domain.events.get(
            message.type
        )
        payload: Any = message  # a type this domain does not know reaches $any as stored
        if event_class is not None:
            try:
                payload = event_class.from_message(message)
            except (ValidationError, TypeError) as error:
                raise Undeliverable(f"cannot deserialise {message.type}: {error}") from error
        handler = self.spec.cls()
        for name in self.spec.methods_for(message.type):
            getattr(handler, name)(payload)

    def fail(
        self,
        conn: psycopg.Connection[Any],
        message: Message,
        error: BaseException,
        *,
        attempt: int | None,
        final: bool,
    ) -> Outcome:
        """Count a failed attempt, tell handle_error, and retry or give up."""
        text = f"{type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(error))
        params = {"handler": self.spec.name, "message_id": message.id, "error": text}
        row = conn.execute(QUERIES["failure_record"], params).fetchone()
        assert row is not None
        counted, first_failed_at, last_failed_at = row
        attempts = max(int(counted), attempt or 0)
        self._failed.add(str(message.id))
        last = final or attempts >= self.config.attempts
        logger.error(
            "%s failed on %s %s (stream %s), attempt %d of %d%s\n%s",
            self.spec.name,
            message.type,
            message.id,
            message.stream_name,
            attempts,
            self.config.attempts,
            ": giving up" if last else "",
            trace,
        )
        secondary = self.spec.call_handle_error(error, message)
        if secondary is not None:
            logger.error(
                "%s.handle_error itself failed: %r", self.spec.name, secondary, exc_info=secondary
            )
        if not last:
            return Outcome.RETRY
        if self.config.enable_dlq:
            letter = DeadLetter(
                self.spec.name, message, text, trace, attempts, first_failed_at, last_failed_at
            )
            self.dead_letters.put(conn, letter)
            logger.error(
                "%s dead-lettered %s after %d attempt(s)", self.spec.name, message.id, attempts
            )
        else:
            logger.error(
                "%s dropped %s after %d attempt(s) (enable_dlq is off)",
                self.spec.name,
                message.id,
                attempts,
            )
        conn.execute(
            QUERIES["failure_clear"], {"handler": self.spec.name, "message_id": message.id}
        )
        self._failed.discard(str(message.id))
        return Outcome.DEAD
