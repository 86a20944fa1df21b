"""`pgstore dispatch --http HOST:PORT`: /healthz and /metrics, served beside the loop."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
import uvicorn
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pgstore._queries import QUERIES
from pgstore.dispatch.metrics import DispatchMetrics

logger = logging.getLogger(__name__)


class Health:
    """What the loop says about itself, for /healthz: it beats once per pass; a reason
    set while it cannot work (connecting, waiting for migrate, stopped)."""

    def __init__(self, conninfo: str, stall_seconds: float) -> None:
        self.conninfo = conninfo
        self.stall_seconds = stall_seconds
        self.beat_at: float | None = None
        self.reason: str | None = "starting"

    def beat(self) -> None:
        self.beat_at = time.monotonic()
        self.reason = None

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): the loop runs and has passed recently, and the database
        answers a query now."""
        if self.reason is not None:
            return False, {"status": "unavailable", "reason": self.reason}
        age = time.monotonic() - (self.beat_at or 0.0)
        if age > self.stall_seconds:
            return False, {"status": "unavailable", "reason": f"loop stalled for {age:.1f}s"}
        try:
            with psycopg.connect(self.conninfo, connect_timeout=2) as conn:
                conn.execute(QUERIES["liveness"])
        except psycopg.Error as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            return False, {"status": "unavailable", "reason": f"database: {first}"}
        return True, {"status": "ok", "last_pass_seconds_ago": round(age, 3)}


def serve(address: str, health: Health, metrics: DispatchMetrics) -> uvicorn.Server:
    """Start the HTTP server in a thread of its own; returns it (`should_exit` stops it)."""
    host, _, port = address.rpartition(":")

    async def healthz(request: Request) -> Response:
        healthy, details = await run_in_threadpool(health.check)
        return JSONResponse(details, status_code=200 if healthy else 503)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(routes=[Route("/healthz", healthz), Route("/metrics", prometheus)])
    server = uvicorn.Server(
        uvicorn.Config(app, host=host or "127.0.0.1", port=int(port), log_level="warning")
    )
    # In a thread of its own, uvicorn leaves signals to the dispatcher (it stops cleanly).
    threading.Thread(target=server.run, name="pgstore-http", daemon=True).start()
    logger.info("serving /healthz and /metrics on http://%s:%s", host or "127.0.0.1", port)
    return server
