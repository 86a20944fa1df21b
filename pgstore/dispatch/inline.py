"""event_processing = "sync": a writer's process runs the handlers of what it appended."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore._queries import QUERIES
from pgstore.dispatch.dispatcher import subscription_for
from pgstore.dispatch.subscription import Session, Subscription
from pgstore.domain import Domain, activated

if TYPE_CHECKING:
    from pgstore.handlers import HandlerSpec

logger = logging.getLogger(__name__)

# How long a writer waits for the read horizon to pass its own events (another
# transaction, older than its, may still be open); past this, it leaves the rest to
# `pgstore dispatch`, which never skips them either.
WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.005


def run_inline(domain: Domain, appended: list[tuple[str, int]]) -> None:
    """Run every handler of the categories `appended` wrote to, until each has passed
    the last position written, through the very subscriptions `pgstore dispatch` uses.

    So positions (or queue messages) move exactly as dispatch would move them: a
    dispatcher started later does not handle these events again, a dispatcher running
    now shares the work (whoever holds a handler's position runs it, the other waits
    for the position to pass), and events of concurrent writers are handled in their
    global order, never skipped (the same gap-safe read).
    """
    targets: dict[str, int] = {}
    for category, position in appended:
        targets[category] = max(position, targets.get(category, -1))
    specs = [spec for spec in domain.handlers if spec.stream_category in targets]
    if not specs:
        return
    with activated(domain), domain.store.connection() as conn:
        conn.autocommit = True
        for spec in specs:
            _run_until(conn, _subscription(domain, conn, spec), targets[str(spec.stream_category)])


def _subscription(domain: Domain, conn: psycopg.Connection[Any], spec: HandlerSpec) -> Subscription:
    cache: dict[str, Subscription] = domain.__dict__.setdefault("_inline_subscriptions", {})
    subscription = cache.get(spec.name)
    if subscription is None:
        subscription = subscription_for(domain, spec)
        subscription.start(conn, Session(0))  # token 0: this writer claims nothing
        cache[spec.name] = subscription
    return subscription


def _run_until(conn: psycopg.Connection[Any], subscription: Subscription, position: int) -> None:
    """Tick until nothing is left to do now and the handler's position has passed
    `position`. A message that failed waits for its retry under `pgstore dispatch`:
    the writer does not wait for retries."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if subscription.tick(conn) > 0:
            continue
        if _passed(conn, subscription, position):
            return
        if time.monotonic() > deadline:
            logger.warning(
                "%s: an older open transaction keeps global position %d from being read; "
                "`pgstore dispatch` will handle it",
                subscription.spec.name,
                position,
            )
            return
        time.sleep(_POLL_SECONDS)


def _passed(conn: psycopg.Connection[Any], subscription: Subscription, position: int) -> bool:
    row = conn.execute(QUERIES["handler_position"], {"handler": subscription.spec.name}).fetchone()
    return row is not None and int(row[0]) > position


Domain.inline = run_inline
