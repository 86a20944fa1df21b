"""Reading events from a hot standby: waiting for its replay, surviving its cancellations.

Why a standby can serve the dispatcher's reads: a standby's snapshot xmin follows the
primary's running transaction ids as it replays them and is never ahead of the
primary's, so `pgstore.global_position_horizon()` computed there stops below every
transaction the standby has not yet seen end. A read below it is a complete prefix
of the category, only later than the primary's. Positions, effects, queues, locks
and LISTEN stay on the primary: a standby refuses writes, LISTEN and transaction ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from pgstore._queries import QUERIES
from pgstore.errors import ConfigurationError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A wake-up waits at most this long for the standby to replay what woke it.
REPLAY_WAIT_SECONDS = 2.0
# A read cancelled by a replication conflict is tried again this often at most.
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class ReplayLag:
    """How far a standby is behind its primary: WAL bytes not yet replayed, and the
    age of the last transaction it replayed (None if it has replayed none)."""

    bytes: int
    seconds: float | None


def connect_standby(conninfo: str) -> psycopg.Connection[Any]:
    """An autocommit connection to a server that must be a hot standby."""
    conn = psycopg.connect(conninfo, autocommit=True)
    row = conn.execute(QUERIES["replica_in_recovery"]).fetchone()
    if not (row and row[0]):
        conn.close()
        raise ConfigurationError(
            "--read-dsn must name a hot standby of the primary (pg_is_in_recovery() is false "
            "there); give the primary as --dsn only"
        )
    return conn


def wait_for_replay(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    timeout: float = REPLAY_WAIT_SECONDS,
) -> bool:
    """Wait until the standby has replayed the primary's WAL as it is now (what a
    NOTIFY announced has committed there before it was sent); False after `timeout`."""
    row = primary.execute(QUERIES["replica_primary_lsn"]).fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        replayed = standby.execute(QUERIES["replica_replayed"], {"lsn": target}).fetchone()
        if replayed and replayed[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def replay_lag(primary: psycopg.Connection[Any], standby: psycopg.Connection[Any]) -> ReplayLag:
    row = primary.execute(QUERIES["replica_primary_lsn"]).fetchone()
    assert row is not None
    lag = standby.execute(QUERIES["replica_lag"], {"lsn": row[0]}).fetchone()
    assert lag is not None
    return ReplayLag(max(int(lag[0] or 0), 0), None if lag[1] is None else float(lag[1]))


def is_recovery_conflict(error: BaseException) -> bool:
    """A standby cancelled the statement to replay something it conflicted with
    (max_standby_streaming_delay): the read was fine, its timing was not."""
    return isinstance(error, psycopg.errors.SerializationFailure) and (
        "conflict with recovery" in str(error)
    )


def retrying_conflicts(read: Callable[[], T], *, retries: int = CONFLICT_RETRIES) -> T:
    """Run a read on a standby, again when a replication conflict cancels it."""
    for attempt in range(retries + 1):
        try:
            return read()
        except psycopg.errors.SerializationFailure as error:
            if not is_recovery_conflict(error) or attempt == retries:
                raise
            logger.info("a read on the standby was cancelled (%s); reading again", error)
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")
