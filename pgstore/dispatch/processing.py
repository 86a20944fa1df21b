"""Running messages through one handler: savepoints, conflict re-runs, retries, dead letters."""

from __future__ import annotations

import enum
import logging
import random
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore import tracing, unit_of_work
from pgstore._queries import QUERIES
from pgstore.deferred import DeferredWrites
from pgstore.dispatch.dead_letters import DeadLetter, DeadLetters
from pgstore.dispatch.metrics import Observer
from pgstore.envelope import origin_stream
from pgstore.errors import (
    AggregateConflict,
    StreamOrderConflict,
    ValidationError,
    WrongExpectedVersion,
)
from pgstore.handlers import HandlerSpec
from pgstore.messages import Message, Undecodable

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.subscriptions import SubscriptionConfig

logger = logging.getLogger(__name__)

Item = Message | Undecodable
"""What a subscription read: a message, or one that could not be read as one."""

# Another transaction got there first: the handler is right, its view was stale. Run
# it again at once on fresh state (each statement of a READ COMMITTED transaction sees
# what has committed) instead of counting a failure.
TRANSIENT = (
    AggregateConflict,
    WrongExpectedVersion,
    StreamOrderConflict,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)


class Outcome(enum.Enum):
    HANDLED = "handled"
    SKIPPED = "skipped"  # nothing in this handler handles it
    RETRY = "retry"  # failed; will be attempted again
    DEAD = "dead"  # failed for the last time: dead-lettered (or dropped, enable_dlq=False)


class Undeliverable(Exception):
    """The message cannot become an event of this domain; retrying will not help."""


class _RollBack(Exception):
    """Leaves the batch savepoint, rolling it back."""


def message_of(item: Item) -> Message:
    """The message, or for one that could not be read, what could be read of it."""
    return item.placeholder if isinstance(item, Undecodable) else item


class MessageProcessor:
    """Applies one handler to messages, inside the caller's transaction.

    Both subscription types use it, so retries, conflicts, handle_error and dead
    letters mean the same thing in both.
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
        self.conflicts = 0  # re-runs since the caller last saved the count
        self.observer: Observer = Observer()  # metrics, with `pgstore dispatch --http`
        self._failed: set[str] = set()  # message ids with a failure row to clear on success

    def load_failures(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(QUERIES["failure_ids"], {"handler": self.spec.name}).fetchall()
        self._failed = {str(row[0]) for row in rows}

    def wants(self, item: Item) -> bool:
        """Whether this handler handles the message at all (type, and source_stream).
        One that cannot be read is wanted if its type is (or cannot be told): it must
        reach the dead letters."""
        if isinstance(item, Undecodable):
            return item.malformed or bool(self.spec.methods_for(item.placeholder.type))
        return bool(self.spec.methods_for(item.type)) and self.spec.accepts_origin(
            origin_stream(item)
        )

    def save_conflicts(self, conn: psycopg.Connection[Any]) -> None:
        """Add the conflicts counted since the last call to the handler's total (in the
        caller's transaction)."""
        if self.conflicts:
            conn.execute(
                QUERIES["conflicts_add"], {"handler": self.spec.name, "count": self.conflicts}
            )
            self.conflicts = 0

    def process(
        self,
        conn: psycopg.Connection[Any],
        item: Item,
        *,
        attempt: int | None = None,
        reruns: int = 0,
    ) -> Outcome:
        """Run the handler on one message in a savepoint of its own. `attempt`: a
        durable attempt number the caller already has (pgmq's read count), else pgstore
        counts attempts itself. `reruns`: conflict re-runs already spent on it."""
        if not self.wants(item):
            return Outcome.SKIPPED
        while True:
            try:
                with conn.transaction():
                    # A re-run after a lost race locks what it loads: it cannot lose
                    # again, so a hot aggregate cannot starve a handler.
                    self._call(conn, item, lock_on_load=reruns > 0)
            except Undeliverable as error:
                return self.fail(conn, item, error, attempt=attempt, final=True)
            except Exception as error:
                if self._rerun(item, error, reruns):
                    reruns += 1
                    continue
                if _connection_lost(conn, error):
                    raise
                return self.fail(conn, item, error, attempt=attempt, final=False)
            self._clear_failure(conn, item)
            return Outcome.HANDLED

    def process_batch(
        self,
        conn: psycopg.Connection[Any],
        items: list[Item],
        *,
        attempts: list[int | None] | None = None,
        skip: Callable[[int], bool] = lambda _: False,
        on_outcome: Callable[[int, Outcome], bool],
    ) -> None:
        """Run the handler on each message in order, inside the caller's transaction.

        A savepoint per message costs two round trips, so while every message
        succeeds one savepoint covers the rest of the batch, and the aggregates the
        handler saves and the events they raise are held back and sent together at
        its end (see pgstore.deferred). When one message fails, that savepoint is
        rolled back and the messages before it run again, each in its own savepoint
        and writing as it goes (their effects were undone with it). The failed one then
        runs again at once if it lost a race (a conflict), else its failure is counted
        without running it a second time. When sending the held-back writes fails
        (a row changed under the batch), the whole batch runs again that way.
        `on_outcome(index, outcome)` hears every outcome in order and returns True to
        stop the batch; `skip(index)` leaves a message out (reported as nothing).
        """
        attempts = attempts or [None] * len(items)

        def one_by_one(indexes: range) -> bool:
            """Each message alone, in its own savepoint; True when told to stop."""
            for index in indexes:
                if skip(index):
                    continue
                if on_outcome(index, self.process(conn, items[index], attempt=attempts[index])):
                    return True
            return False

        start = 0
        while start < len(items):
            handled, failure = self._optimistic_pass(conn, items, start, skip)
            if failure is None:
                for index, outcome in handled:
                    if outcome is Outcome.HANDLED:
                        self._clear_failure(conn, items[index])
                    if on_outcome(index, outcome):
                        return
                return
            failed, failed_with = failure
            if failed == len(items):
                # Sending the held-back writes failed: no one message to blame, so each
                # runs again alone, writing as it goes.
                if isinstance(failed_with, TRANSIENT):
                    self.conflicts += 1
                    self.observer.conflict(self.spec.name)
                logger.info(
                    "%s: the batch's held-back writes failed (%s); running it message by "
                    "message", self.spec.name, failed_with,
                )  # fmt: skip
                one_by_one(range(start, len(items)))
                return
            if one_by_one(range(start, failed)):  # undone with the savepoint: again
                return
            if self._rerun(items[failed], failed_with, 0):
                outcome = self.process(conn, items[failed], attempt=attempts[failed], reruns=1)
            else:
                outcome = self.fail(
                    conn, items[failed], failed_with, attempt=attempts[failed],
                    final=isinstance(failed_with, Undeliverable),
                )  # fmt: skip
            if on_outcome(failed, outcome):
                return
            start = failed + 1

    def _optimistic_pass(
        self,
        conn: psycopg.Connection[Any],
        items: list[Item],
        start: int,
        skip: Callable[[int], bool],
    ) -> tuple[list[tuple[int, Outcome]], tuple[int, Exception] | None]:
        """Run items[start:] in one savepoint, their writes held back and sent at the
        end. Returns the outcomes, and the failure that rolled the savepoint back:
        (index of the message that raised, or len(items) when sending failed, error)."""
        handled: list[tuple[int, Outcome]] = []
        failure: tuple[int, Exception] | None = None
        # Held-back writes fall back on running the batch again when one lost a race:
        # a handler allowed no conflict re-runs writes as it goes, so a lost race is
        # charged to its own message.
        deferred = DeferredWrites() if self.config.conflict_retries > 0 else None
        try:
            with conn.transaction():
                for index in range(start, len(items)):
                    item = items[index]
                    if skip(index):
                        continue
                    if not self.wants(item):
                        handled.append((index, Outcome.SKIPPED))
                        continue
                    try:
                        self._call(conn, item, deferred=deferred)
                    except Exception as caught:
                        if _connection_lost(conn, caught):
                            raise
                        failure = (index, caught)
                        raise _RollBack from caught
                    handled.append((index, Outcome.HANDLED))
                try:
                    if deferred is not None:
                        deferred.flush(conn)
                except Exception as caught:
                    if _connection_lost(conn, caught):
                        raise
                    failure = (len(items), caught)
                    raise _RollBack from caught
        except _RollBack:
            pass
        return handled, failure

    def _call(
        self,
        conn: psycopg.Connection[Any],
        item: Item,
        *,
        lock_on_load: bool = False,
        deferred: DeferredWrites | None = None,
    ) -> None:
        if isinstance(item, Undecodable):
            raise Undeliverable(f"cannot read the stored message: {item}")
        event_class = self.domain.events.class_for(item.type, self.spec.event_classes)
        payload: Any = item  # a type this domain does not know reaches $any as stored
        if event_class is not None:
            try:
                payload = event_class.from_message(item)
            except (ValidationError, TypeError, ValueError) as error:
                raise Undeliverable(f"cannot deserialise {item.type}: {error}") from error
        handler = self.spec.cls()
        metadata = item.metadata
        attributes = {
            "pgstore.handler": self.spec.name,
            "pgstore.message.id": item.id,
            "pgstore.message.type": item.type,
            "pgstore.stream": item.stream_name,
            "pgstore.correlation_id": (metadata or {}).get("correlation_id"),
            "pgstore.causation_id": (metadata or {}).get("causation_id"),
        }
        started = time.monotonic()
        with (
            tracing.continued(f"pgstore.handle {self.spec.name}", metadata, attributes),
            unit_of_work.joined(
                unit_of_work.UnitOfWork(conn, item, lock_on_load=lock_on_load, deferred=deferred)
            ),
        ):
            for name in self.spec.methods_for(item.type):
                getattr(handler, name)(payload)
        self.observer.handled(self.spec.name, time.monotonic() - started)

    def _rerun(self, item: Item, error: BaseException, reruns: int) -> bool:
        """Whether to run a message again at once, after a pause (which it takes).

        A lost race (conflict) is counted and re-run after a short random pause (so two
        contenders do not collide again in step), up to conflict_retries times. A
        ConnectionError or TimeoutError from the handler's own calls is re-run up to the
        handler's `retries`, with its `backoff`. Neither uses an attempt."""
        if isinstance(error, TRANSIENT):
            bound = self.config.conflict_retries
            pause = random.uniform(0, min(0.2, 0.002 * 2**reruns))
        elif isinstance(error, ConnectionError | TimeoutError) and not isinstance(
            error, psycopg.Error
        ):
            bound, pause = self.spec.retries, _backoff(self.spec.backoff, reruns)
        else:
            return False
        if reruns >= bound:
            return False
        if isinstance(error, TRANSIENT):
            self.conflicts += 1
            self.observer.conflict(self.spec.name)
        message = message_of(item)
        logger.info(
            "%s: %s on %s %s (stream %s); running it again (%d of %d)",
            self.spec.name,
            type(error).__name__,
            message.type,
            message.id,
            message.stream_name,
            reruns + 1,
            bound,
        )
        time.sleep(pause)
        return True

    def _clear_failure(self, conn: psycopg.Connection[Any], item: Item) -> None:
        message = message_of(item)
        if str(message.id) in self._failed:
            conn.execute(
                QUERIES["failure_clear"], {"handler": self.spec.name, "message_id": message.id}
            )
            self._failed.discard(str(message.id))

    def fail(
        self,
        conn: psycopg.Connection[Any],
        item: Item,
        error: BaseException,
        *,
        attempt: int | None,
        final: bool,
    ) -> Outcome:
        """Count a failed attempt, tell handle_error, and retry or give up."""
        message = message_of(item)
        text = f"{type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(error))
        params = {"handler": self.spec.name, "message_id": message.id, "error": text}
        row = conn.execute(QUERIES["failure_record"], params).fetchone()
        assert row is not None
        counted, first_failed_at, last_failed_at = row
        attempts = max(int(counted), attempt or 0)
        self._failed.add(str(message.id))
        self.observer.failed(self.spec.name)
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
            if isinstance(item, Undecodable):
                letter = letter.with_raw(item.raw_data, item.raw_metadata)
            self.dead_letters.put(conn, letter)
            self.observer.dead(self.spec.name)
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
        # A replay starts counting again (the dead letter keeps the error and attempts).
        conn.execute(
            QUERIES["failure_clear"], {"handler": self.spec.name, "message_id": message.id}
        )
        self._failed.discard(str(message.id))
        return Outcome.DEAD


def _backoff(kind: str, reruns: int) -> float:
    """Seconds before re-run number `reruns` + 1: 0.1 s, doubling (exponential),
    growing by 0.1 s (linear), or always 0.1 s (fixed); at most 5 s."""
    base = 0.1
    pause: float = {"exponential": base * 2**reruns, "linear": base * (reruns + 1.0)}.get(
        kind, base
    )
    return min(pause, 5.0)


def _connection_lost(conn: psycopg.Connection[Any], error: BaseException) -> bool:
    """The connection failed (or a lock or statement timeout hit), not the handler: the
    batch is rolled back and the dispatcher reconnects or tries it again, counting no
    attempt. Conflicts are OperationalErrors too, but the handler's to re-run."""
    if conn.broken:
        return True
    return isinstance(error, psycopg.OperationalError) and not isinstance(error, TRANSIENT)
