"""`pgstore dispatch --workers N`: start N dispatcher processes, restart one that dies."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from pgstore.cli._base import Exit

logger = logging.getLogger(__name__)

# A worker that dies unexpectedly is started again after a pause that doubles while it
# keeps dying soon after its start (an error that returns at once, such as a database
# that refuses it, then costs a line a minute, not a busy loop), and is back at the
# shortest once a worker has run for STEADY_SECONDS.
FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 60.0
STEADY_SECONDS = 60.0
# How often the supervisor looks at its workers.
LOOK_SECONDS = 0.2


def unexpected(returncode: int) -> bool:
    """Whether a worker's end calls for a new one: an unexpected error, or a signal the
    supervisor did not send (kill -9, the OOM killer). A worker that ended with one of
    pgstore's meaningful exit codes (a configuration error, a usage error, ...) would
    end the same way again."""
    return returncode == Exit.UNEXPECTED or returncode < 0


class Worker:
    """One dispatcher process and what its restarts have cost."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.argv = argv
        self.env = env
        self.pause = FIRST_PAUSE_SECONDS
        self.restart_at: float | None = None
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self.started_at = time.monotonic()
        return subprocess.Popen([sys.executable, "-m", "pgstore", *self.argv], env=self.env)

    def ended(self) -> int | None:
        return self.process.poll()

    def schedule_restart(self) -> None:
        if time.monotonic() - self.started_at >= STEADY_SECONDS:
            self.pause = FIRST_PAUSE_SECONDS
        logger.warning(
            "worker %d ended unexpectedly (%s); starting another in %.0fs",
            self.process.pid,
            describe(self.process.returncode),
            self.pause,
        )
        self.restart_at = time.monotonic() + self.pause
        self.pause = min(self.pause * 2, LONGEST_PAUSE_SECONDS)

    def restart_if_due(self) -> None:
        if self.restart_at is not None and time.monotonic() >= self.restart_at:
            self.restart_at = None
            self.process = self._start()
            logger.warning("worker %d started", self.process.pid)


def describe(returncode: int) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:  # a signal without a name (a real-time one)
        return f"signal {-returncode}"


def supervise(argv: list[str], env: Mapping[str, str], workers: int, *, restart: bool) -> int:
    """Run `workers` copies of `pgstore argv`, pass SIGINT/SIGTERM on to them, and (if
    `restart`) replace one that dies unexpectedly; return the worst exit code once all
    have ended."""
    pool = [Worker(argv, env) for _ in range(workers)]
    stopping = threading.Event()
    forwarded: set[int] = set()

    def forward(signum: int, _frame: Any) -> None:
        stopping.set()
        forwarded.add(signum)
        for worker in pool:
            if worker.ended() is None:
                worker.process.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    codes: dict[int, int] = {}
    while True:
        for index, worker in enumerate(pool):
            if index in codes:
                continue
            if worker.restart_at is not None:
                if stopping.is_set():
                    codes[index] = Exit.OK  # stopped while waiting to start again
                else:
                    worker.restart_if_due()
                continue
            code = worker.ended()
            if code is None:
                continue
            if restart and not stopping.is_set() and unexpected(code):
                worker.schedule_restart()
            elif -code in forwarded:
                codes[index] = Exit.OK  # stopped by our signal before it could catch it
            else:
                codes[index] = code
        if len(codes) == len(pool):
            # A worker killed by a signal counts as the shell would report it: 128 + N.
            return max(128 - code if code < 0 else code for code in codes.values())
        stopping.wait(LOOK_SECONDS)
