"""Live updates for every browser from one LISTEN connection per server process."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import psycopg

from pgstore._queries import QUERIES
from pgstore.observatory.data import Observatory

logger = logging.getLogger(__name__)

# A NOTIFY is a hint (appends coalesce them): look at least this often anyway.
POLL_SECONDS = 1.0
# Handler progress is sent at most this often.
PROGRESS_SECONDS = 2.0


class Broadcaster:
    """Listens for appends (pgstore_messages) and fans out what changed to every
    subscriber: `appended` events (below the read horizon, so never out of order) and
    `progress` (the status). One thread and one connection, whatever the browsers."""

    def __init__(self, observatory: Observatory) -> None:
        self.observatory = observatory
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self) -> asyncio.Queue[str]:
        inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), inbox))
        return inbox

    def unsubscribe(self, inbox: asyncio.Queue[str]) -> None:
        with self._lock:
            self._subscribers = {s for s in self._subscribers if s[1] is not inbox}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pgstore-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _publish(self, kind: str, payload: Any) -> None:
        message = json.dumps({"kind": kind, "payload": payload}, default=str)
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, inbox in subscribers:
            loop.call_soon_threadsafe(_offer, inbox, message)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except psycopg.Error as error:
                logger.warning("live updates: %s; reconnecting", str(error).strip())
                self._stopping.wait(1.0)

    def _follow(self) -> None:
        last = self.observatory.last_position()
        progress_at = 0.0
        with self.observatory.pool.new_connection() as listener:
            listener.execute(QUERIES["listen"])
            while not self._stopping.is_set():
                for _ in listener.notifies(timeout=POLL_SECONDS, stop_after=1):
                    pass
                appended = self.observatory.since(last + 1)
                if appended:
                    last = appended[-1]["global_position"]
                    self._publish("appended", appended)
                if appended or time.monotonic() - progress_at > PROGRESS_SECONDS:
                    progress_at = time.monotonic()
                    self._publish("progress", self.observatory.status().to_dict())


def _offer(inbox: asyncio.Queue[str], message: str) -> None:
    if inbox.full():  # a slow browser loses old updates, not the server's memory
        inbox.get_nowait()
    inbox.put_nowait(message)
