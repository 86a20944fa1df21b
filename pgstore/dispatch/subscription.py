"""What the dispatcher drives, whatever the subscription type: start, tick, wake-ups."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from pgstore.dispatch.dead_letters import DeadLetters
from pgstore.dispatch.processing import MessageProcessor

if TYPE_CHECKING:
    from pgstore.domain import Domain
    from pgstore.handlers import HandlerSpec
    from pgstore.subscriptions import SubscriptionConfig


@dataclass(frozen=True)
class Session:
    """The dispatcher's database session, as subscriptions need to know it.

    `token`: held as an advisory lock for as long as the session lives, so that other
    workers can tell this session's claims on queue messages from a dead worker's.
    `reader`: a connection to a hot standby to read events from (`--read-dsn`), or
    None to read them on the primary like everything else.
    """

    token: int
    reader: psycopg.Connection[Any] | None = None


class Subscription(abc.ABC):
    """One handler, of either subscription type.

    Both types share the processor (savepoints, conflicts, retries, dead letters) and
    the wake-up bookkeeping: `not_before` is when something this subscription knows
    of falls due (a retry), `pending` whether work remains that a `--once` run must
    wait for (a message in flight elsewhere, a retry, a held-back stream).
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
        self.processor = MessageProcessor(domain, spec, config, dead_letters)
        self.not_before = 0.0
        self.pending = False

    @abc.abstractmethod
    def start(self, conn: psycopg.Connection[Any], session: Session) -> None:
        """Register the subscription (idempotent) on a new session."""

    @abc.abstractmethod
    def tick(self, conn: psycopg.Connection[Any]) -> int:
        """Do what is due and the next batch; return how much happened (0: nothing)."""

    def due_in(self, seconds: float | None) -> None:
        """Remember that something falls due in `seconds` (None: nothing is)."""
        self.not_before = 0.0 if seconds is None else time.monotonic() + max(seconds, 0.0)
