"""Subscription type `stream`: a pgmq queue per handler, fed from the category, consumed by many."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from pgstore import replica, tracing
from pgstore._queries import QUERIES
from pgstore.dispatch.dead_letters import QueueDeadLetters
from pgstore.dispatch.event_store import decode_item
from pgstore.dispatch.processing import Outcome, message_of
from pgstore.dispatch.subscription import Session, Subscription

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.handlers import HandlerSpec
    from pgstore.subscriptions import SubscriptionConfig

logger = logging.getLogger(__name__)

# How many batches the queue may hold (waiting or in flight): the feeder tops it up to
# that and no further (see feed_queue.sql for why a long queue is slow). Four batches
# keep a few workers busy between two feeds.
QUEUE_BATCHES = 4

# A consumer vacuums its queue table after deleting this many messages. Every handled
# message leaves a dead row that pgmq's grouped read scans like a live one, and
# autovacuum visits a database at most once a minute (about 100,000 messages at the
# rates bench/dispatch.py measures). Vacuuming a short queue takes milliseconds.
VACUUM_AFTER_DELETES = 2000

# A busy worker still looks for dead workers' claims this often (an idle one looks
# every time it finds nothing to read).
SWEEP_SECONDS = 2.0

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def queue_names(handler: str) -> tuple[str, str]:
    """The handler's pgmq queue and dead-letter queue (pgmq allows 47 characters); the
    same rule as pgstore.queue_names() in SQL, which is what creates them."""
    lowered = handler.translate(_ASCII_LOWER)
    readable = re.sub(r"[^a-z0-9]+", "_", lowered).strip("_")[:30]
    digest = hashlib.sha256(handler.encode()).hexdigest()[:8]
    queue = f"ps_{readable}_{digest}"
    return queue, f"{queue}_dlq"


class StreamSubscription(Subscription):
    """One stream-type handler: a feeder and a consumer of its own pgmq queue.

    Feeder: copies the category's messages into the queue in global order, through
    the store's gap-safe read, moving a position in the same transaction as the
    sends, so each message is queued exactly once and never skipped.

    Consumer: reads a batch with pgmq's grouped FIFO read keyed by stream name (a
    stream's next message is not handed out while an earlier one is in flight), then,
    in one transaction, locks the batch's queue rows, runs the handler on each in a
    savepoint and deletes the handled rows. The row lock is the guard against a
    visibility timeout that expires under a slow handler: a second worker that reads
    the same message blocks on the lock and finds the row gone (or read again since)
    once the first commits, so it never applies the effects twice.
    """

    def __init__(self, domain: Domain, spec: HandlerSpec, config: SubscriptionConfig) -> None:
        self.queue, self.dead_letter_queue = queue_names(spec.name)
        super().__init__(
            domain, spec, config, QueueDeadLetters(spec.name, self.queue, self.dead_letter_queue)
        )
        self.table = sql.Identifier("pgmq", f"q_{self.queue}")
        self.token = 0  # the session's claim token, set by start
        self.reader: psycopg.Connection[Any] | None = None  # a standby to read from
        self.queue_limit = QUEUE_BATCHES * config.messages_per_tick
        self.deleted_since_vacuum = 0
        self.swept_at = 0.0

    def start(self, conn: psycopg.Connection[Any], session: Session) -> None:
        """Create the queues (idempotent) and register the subscription."""
        self.token = session.token
        self.reader = session.reader
        with conn.transaction():
            created = conn.execute(
                QUERIES["queue_create"],
                {"handler": self.spec.name, "category": self.spec.stream_category},
            ).fetchone()
        assert created == (self.queue, self.dead_letter_queue), created
        self.processor.load_failures(conn)

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        return self.feed(conn) + self.consume(conn)

    def feed(self, conn: psycopg.Connection[Any]) -> int:
        """Copy new category messages into the queue (server-side, in one transaction);
        return how many were passed."""
        types = None if self.spec.handles_everything() else sorted(self.spec.methods)
        if self.reader is not None:
            return self._feed_from_standby(conn, self.reader, types)
        row = conn.execute(
            QUERIES["queue_feed"],
            {
                "handler": self.spec.name,
                "queue": self.queue,
                "category": self.spec.stream_category,
                "queue_limit": self.queue_limit,
                "types": types,
                "source_stream": self.spec.source_stream,
            },
        ).fetchone()
        return int(row[0]) if row else 0

    def _feed_from_standby(
        self, conn: psycopg.Connection[Any], reader: psycopg.Connection[Any], types: Any
    ) -> int:
        """The feeder with its read on a standby: lock the feeder position and measure
        the room on the primary, read the batch on the standby (below its horizon: a
        complete prefix), then send it and move the position on the primary, in the
        transaction that holds the lock."""
        with conn.transaction():
            row = conn.execute(
                QUERIES["queue_feed_lock"],
                {"handler": self.spec.name, "queue": self.queue, "queue_limit": self.queue_limit},
            ).fetchone()
            if row is None or int(row[1]) <= 0:
                return 0  # another feeder holds it, or the queue is full
            params = {
                "category": self.spec.stream_category,
                "from_global_position": int(row[0]),
                "room": int(row[1]),
                "types": types,
                "source_stream": self.spec.source_stream,
            }
            read = replica.retrying_conflicts(
                lambda: reader.execute(QUERIES["queue_feed_read"], params).fetchone()
            )
            assert read is not None
            passed, last, messages, groups = read
            if not passed:
                return 0
            if messages:
                conn.execute(
                    QUERIES["queue_send_batch"],
                    {"queue": self.queue, "messages": messages, "groups": groups},
                )
            conn.execute(
                QUERIES["position_advance"], {"handler": self.spec.name, "position": last + 1}
            )
            return int(passed)

    def consume(self, conn: psycopg.Connection[Any]) -> int:
        """Handle the next batch from the queue; return how many messages were read."""
        rows = self._read(conn)
        if not rows or time.monotonic() - self.swept_at > SWEEP_SECONDS:
            self._release_dead_claims(conn)
        if not rows:
            self._note_pending(conn)
            return 0
        with conn.transaction():
            batch = self._lock(conn, rows)
            done = self._settle(conn, batch)
            self.processor.save_conflicts(conn)
        self.deleted_since_vacuum += len(done)
        if self.deleted_since_vacuum >= VACUUM_AFTER_DELETES:
            self.vacuum(conn)
        self.pending = True  # read something: look again before calling it done
        return len(rows)

    def _read(self, conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        """Read a batch, FIFO per stream. The read is its own transaction: pgmq's read
        count then counts every delivery, even one whose worker died mid-handler
        (durable attempts). The same statement records this session's claim on it."""
        return conn.execute(
            QUERIES["queue_read"],
            {
                "queue": self.queue,
                "visibility_timeout": self.config.visibility_timeout_seconds,
                "limit": self.config.messages_per_tick,
                "token": self.token,
            },
        ).fetchall()

    def _lock(self, conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> list[Any]:
        """Lock the batch's queue rows for the handler transaction, keeping those still
        read by us (a row gone, or read again since, was dealt with elsewhere): the guard
        against a visibility timeout that ran out under a slow handler."""
        locked = dict(
            conn.execute(
                sql.SQL(QUERIES["queue_lock"]).format(table=self.table),
                {"ids": [row[0] for row in rows]},
            ).fetchall()
        )
        return [row for row in rows if locked.get(row[0]) == row[1]]  # in msg_id order

    def _settle(self, conn: psycopg.Connection[Any], batch: list[Any]) -> list[int]:
        """Run the handler on the batch, and in the same transaction delete what was
        dealt with (handled, skipped or dead) and release what is retried later;
        return the deleted queue message ids."""
        items = [decode_item(row[2:]) for row in batch]
        blocked: set[str] = set()  # streams with a failed message earlier in this batch
        done: list[int] = []
        handled = 0

        def held_back(index: int) -> bool:
            if message_of(items[index]).stream_name in blocked:
                # Keep the stream's order: release it to follow the failed one.
                self._release(conn, batch[index][0], 0)
                return True
            return False

        def settle(index: int, outcome: Outcome) -> bool:
            nonlocal handled
            if outcome is Outcome.RETRY:
                blocked.add(message_of(items[index]).stream_name)
                self._release(conn, batch[index][0], self.config.retry_delay_seconds)
                self.due_in(self.config.retry_delay_seconds)
            else:
                handled += outcome is Outcome.HANDLED
                done.append(batch[index][0])
            return False

        self.processor.observer.batch(self.spec.name, len(items))
        with tracing.span(f"pgstore.dispatch {self.spec.name}", {"size": len(items)}):
            self.processor.process_batch(
                conn,
                items,
                attempts=[int(row[1]) for row in batch],
                skip=held_back,
                on_outcome=settle,
            )
        # One statement for the batch: delete what was dealt with, and the claim.
        conn.execute(
            QUERIES["queue_settle"], {"queue": self.queue, "done": done, "token": self.token}
        )
        if handled:
            logger.info("%s: %d handled from queue %s", self.spec.name, handled, self.queue)
        return done

    def _release(self, conn: psycopg.Connection[Any], msg_id: int, delay: float) -> None:
        conn.execute(
            QUERIES["queue_release"], {"queue": self.queue, "msg_id": msg_id, "delay": int(delay)}
        )

    def _note_pending(self, conn: psycopg.Connection[Any]) -> None:
        """Whether the queue still holds messages (in flight elsewhere, or waiting for a
        retry): `--once` is not done until it is empty."""
        row = conn.execute(sql.SQL(QUERIES["queue_pending"]).format(table=self.table)).fetchone()
        depth, wait = (int(row[0]), float(row[1])) if row else (0, 0.0)
        self.pending = depth > 0
        if depth:
            self.due_in(wait)

    def _release_dead_claims(self, conn: psycopg.Connection[Any]) -> None:
        """Make messages claimed by workers whose session is gone visible at once."""
        self.swept_at = time.monotonic()
        row = conn.execute(QUERIES["queue_release_dead_claims"], {"queue": self.queue}).fetchone()
        if row and row[0]:
            logger.warning(
                "%s: %d message(s) claimed by a worker that is gone are handed out again",
                self.spec.name,
                row[0],
            )

    def vacuum(self, conn: psycopg.Connection[Any]) -> None:
        """Reclaim the queue table's dead rows (outside any transaction, as VACUUM must
        be). A role that does not own the table gets a server warning and no vacuum:
        autovacuum is then the only cleaner."""
        self.deleted_since_vacuum = 0
        try:
            conn.execute(sql.SQL(QUERIES["queue_vacuum"]).format(table=self.table))
        except psycopg.OperationalError:
            raise  # the connection is gone: the dispatcher reconnects
        except psycopg.Error as error:
            # Upkeep only: handling goes on, and autovacuum remains.
            logger.warning("%s: could not vacuum queue %s: %s", self.spec.name, self.queue, error)
