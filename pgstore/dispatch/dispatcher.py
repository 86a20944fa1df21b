"""The dispatch loop: wake on NOTIFY or poll, run every handler's ticks, stop cleanly."""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore import connection, replica, subscriptions
from pgstore import migrate as migrations
from pgstore._queries import QUERIES
from pgstore.dispatch.event_store import EventStoreSubscription
from pgstore.dispatch.health import Health, serve
from pgstore.dispatch.metrics import DispatchMetrics
from pgstore.dispatch.stream import StreamSubscription
from pgstore.dispatch.subscription import Session, Subscription
from pgstore.dispatch.wakeup import Listener
from pgstore.domain import activated
from pgstore.errors import ConfigurationError, StalePosition

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.handlers import HandlerSpec

logger = logging.getLogger(__name__)

# After a wake-up finds nothing new, look once more this much later: a writer that
# skipped its NOTIFY (another writer in its time bucket sent one) commits around now.
RECHECK_AFTER_SECONDS = 0.02
MAX_BACKOFF_SECONDS = 10.0
# --once, while messages are in flight in other workers or wait for a retry: how
# often to look again.
ONCE_RECHECK_SECONDS = 0.1
# Advisory lock key (with a per-session token) that marks a worker session as alive.
CLAIM_LOCK_KEY = 1885823854

# The dispatcher's own sessions: a lock it waits on longer than this fails the batch
# (rolled back, retried next tick) instead of freezing the handler; and a session of
# its own left idle inside a transaction is ended by the server.
SESSION_SETTINGS = {"lock_timeout": "30s", "idle_in_transaction_session_timeout": "5min"}


def subscription_for(domain: Domain, spec: HandlerSpec) -> Subscription:
    """The subscription that runs a handler, of the type its settings resolve to."""
    config = subscriptions.resolve(spec, domain.config)
    if config.subscription_type == subscriptions.STREAM:
        return StreamSubscription(domain, spec, config)
    return EventStoreSubscription(domain, spec, config)


class Dispatcher:
    """Runs the event handlers of one domain until stopped (or, with once=True, drained)."""

    def __init__(
        self,
        domain: Domain,
        *,
        handlers: list[str] | None = None,
        once: bool = False,
        http: str | None = None,
        read_dsn: str | None = None,
    ) -> None:
        """`http`: HOST:PORT to serve /healthz and /metrics on while dispatching;
        `read_dsn`: a hot standby to read events from (everything else stays on the
        primary)."""
        self.domain = domain
        self.once = once
        self.http = http
        self.read_dsn = read_dsn
        self.reader: psycopg.Connection[Any] | None = None
        self.health: Health | None = None
        self.stopping = threading.Event()
        domain.ensure_initialised()
        specs = [
            s
            for s in domain.handlers
            if not handlers or s.cls.__name__ in handlers or s.name in handlers
        ]
        if handlers and len(specs) != len(handlers):
            known = ", ".join(s.cls.__name__ for s in domain.handlers)
            raise ConfigurationError(f"Unknown handler in {handlers}; {domain.name} has: {known}")
        # Resolve every handler's configuration now: a bad name fails at start.
        self.subscriptions = [subscription_for(domain, spec) for spec in specs]
        self.poll_seconds = (
            min((s.config.blocking_timeout_ms for s in self.subscriptions), default=5000) / 1000
        )

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            logger.info(
                "received %s: finishing the current batch, then stopping",
                signal.Signals(signum).name,
            )
            self.stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def run(self) -> None:
        """Dispatch until stopped; reconnect with back-off when the database goes away.
        Handlers see the domain as ``pgstore.current_domain``."""
        server = None
        if self.http:
            conninfo = connection.resolve(self.domain.dsn).conninfo
            self.health = Health(conninfo, stall_seconds=max(self.poll_seconds * 3, 30.0))
            metrics = DispatchMetrics()
            for subscription in self.subscriptions:
                subscription.processor.observer = metrics
            server = serve(self.http, self.health, metrics)
        try:
            with activated(self.domain):
                self._run()
        finally:
            if self.health is not None:
                self.health.reason = "stopped"
            if server is not None:
                server.should_exit = True

    def _run(self) -> None:
        conninfo = connection.resolve(self.domain.dsn).conninfo
        backoff = 0.5
        while not self.stopping.is_set():
            listener = Listener(conninfo)
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    for name, value in SESSION_SETTINGS.items():
                        conn.execute(QUERIES["session_set"], {"name": name, "value": value})
                    # This session's claim token: held as an advisory lock for as long
                    # as the session lives, so other workers can tell its claims on
                    # queue messages from those of a worker that is gone.
                    token = secrets.randbelow(2**31 - 1) + 1
                    conn.execute(
                        QUERIES["session_claim_lock"], {"key": CLAIM_LOCK_KEY, "token": token}
                    )
                    if not self._schema_ready(conn):
                        continue
                    listener.connect()
                    if self.read_dsn:
                        self.reader = replica.connect_standby(self.read_dsn)
                    session = Session(token, self.reader)
                    for subscription in self.subscriptions:
                        subscription.start(conn, session)
                    self._report_undeclared_queues(conn)
                    if backoff > 0.5:
                        logger.warning("reconnected; re-scanning every handler")
                    backoff = 0.5
                    self._loop(conn, listener)
                    return
            except psycopg.OperationalError as error:
                if self.once and self.stopping.is_set():
                    return
                self._unwell(f"reconnecting to the database ({str(error).strip()[:120]})")
                logger.warning(
                    "database connection lost (%s); reconnecting in %.1fs",
                    str(error).strip().splitlines()[0],
                    backoff,
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                listener.close()
                if self.reader is not None:
                    self.reader.close()
                    self.reader = None

    def _schema_ready(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the database has every migration and function this pgstore ships;
        if not, say so and wait a poll interval (a dispatcher deployed before `pgstore
        migrate` ran waits for it instead of failing on a table or function that is not
        there yet)."""
        have, need = migrations.schema_version(conn), len(migrations.discover())
        if have < need:
            self._unwell(f"waiting for `pgstore migrate` (schema {have}, needs {need})")
            logger.warning(
                "the database schema is at migration %d, this pgstore needs %d: "
                "waiting for `pgstore migrate`",
                have,
                need,
            )
        # A release may add a function without a migration (migrate re-applies them
        # all): a pgstore upgraded before migrate ran would fail on its first call.
        elif missing := migrations.missing_functions(conn):
            self._unwell(f"waiting for `pgstore migrate` (functions missing: {missing})")
            logger.warning(
                "the database lacks function(s) this pgstore calls (%s): "
                "waiting for `pgstore migrate`",
                ", ".join(missing),
            )
        else:
            return True
        self.stopping.wait(self.poll_seconds)
        return False

    def _report_undeclared_queues(self, conn: psycopg.Connection[Any]) -> None:
        """Queues of stream handlers this domain no longer declares are left alone, loudly."""
        declared = {spec.name for spec in self.domain.handlers}
        rows = conn.execute(
            QUERIES["stream_subscriptions_of"], {"domain": self.domain.name}
        ).fetchall()
        for handler, queue in rows:
            if handler not in declared:
                logger.warning(
                    "queue %s of %s, which %s no longer declares, is left alone; "
                    "drop it with `pgstore queues drop %s`",
                    queue,
                    handler,
                    self.domain.name,
                    handler,
                )

    def _unwell(self, reason: str) -> None:
        if self.health is not None:
            self.health.reason = reason

    def _loop(self, conn: psycopg.Connection[Any], listener: Listener) -> None:
        recheck = False
        # Reading a standby: what has committed on the primary counts as there once
        # the standby has replayed it (--once waits for that, within a bound, before
        # it ends).
        replayed = False
        while not self.stopping.is_set():
            if self.health is not None:
                self.health.beat()
            worked = self._pass(conn)
            if worked:
                replayed = False
                continue  # read until nothing new
            if recheck:
                recheck = False
                self.stopping.wait(RECHECK_AFTER_SECONDS)
                continue
            if self.reader is not None and self.once and not replayed:
                replica.wait_for_replay(conn, self.reader)
                replayed = True
                continue
            if self.once and not any(s.pending for s in self.subscriptions):
                return  # nothing below the horizon, nothing in flight or held back
            recheck = self._wait(listener)
            if recheck and self.reader is not None:
                # What woke us has committed on the primary; read once the standby
                # has replayed it (or, past a bound, anyway: the recheck follows).
                replica.wait_for_replay(conn, self.reader)

    def _pass(self, conn: psycopg.Connection[Any]) -> bool:
        worked = False
        for subscription in self.subscriptions:
            if self.stopping.is_set():
                break
            try:
                worked |= subscription.tick(conn) > 0
            except StalePosition as error:
                logger.error("%s", error)
            except psycopg.errors.LockNotAvailable as error:
                # lock_timeout: something holds a lock this handler needs. The batch
                # was rolled back; it runs again on the next tick.
                logger.warning(
                    "%s: waited too long for a lock (%s); will try again",
                    subscription.spec.name,
                    str(error).splitlines()[0],
                )
        return worked

    def _wait(self, listener: Listener) -> bool:
        """Sleep until a NOTIFY, the poll interval, a retry falls due, or stop. With
        --once and work still in flight elsewhere, look again soon."""
        now = time.monotonic()
        deadline = now + self.poll_seconds
        if self.once:
            deadline = now + ONCE_RECHECK_SECONDS
        retry_due = min(
            (s.not_before for s in self.subscriptions if s.not_before > now), default=deadline
        )
        deadline = min(deadline, retry_due)
        while not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Short slices so a stop signal is noticed promptly.
            if listener.wait(min(remaining, 0.25)):
                return True
        return False
