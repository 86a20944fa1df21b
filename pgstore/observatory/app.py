"""The observatory's web application: pages, /api, /stream (SSE) and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from pgstore.errors import PgstoreError
from pgstore.observatory.chain import svg as chain_picture
from pgstore.observatory.data import PAGE, Observatory, Search
from pgstore.observatory.live import Broadcaster
from pgstore.observatory.metrics import StoreCollector

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def create_app(observatory: Observatory, *, title: str = "pgstore observatory") -> Starlette:
    """The application; it reads through `observatory` only (a confined reader)."""
    pages = Pages(observatory, title)
    api = Api(observatory)
    broadcaster = Broadcaster(observatory)
    registry = CollectorRegistry()
    registry.register(StoreCollector(observatory))

    async def stream(request: Request) -> Response:
        inbox = broadcaster.subscribe()

        async def updates() -> AsyncIterator[dict[str, str]]:
            try:
                while True:
                    yield {"event": "update", "data": await inbox.get()}
            finally:
                broadcaster.unsubscribe(inbox)

        return EventSourceResponse(updates(), ping=15)

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        broadcaster.start()
        try:
            yield
        finally:
            broadcaster.stop()
            observatory.pool.close()
            observatory.events_pool.close()

    return Starlette(
        routes=[
            Route("/", pages.overview),
            Route("/events", pages.events),
            Route("/events/{id}", pages.event),
            Route("/dead-letters/{handler:path}", pages.dead_letters),
            Route("/api/status", api.status),
            Route("/api/categories", api.categories),
            Route("/api/events", api.events),
            Route("/api/events/{id}", api.event),
            Route("/api/dead-letters/{handler:path}", api.dead_letters),
            Route("/stream", stream),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )


class Pages:
    """Server-rendered HTML (the live parts update through /stream)."""

    def __init__(self, observatory: Observatory, title: str) -> None:
        self.observatory = observatory
        self.title = title

    def page(
        self, request: Request, name: str, *, status_code: int = 200, **context: Any
    ) -> Response:
        return templates.TemplateResponse(
            request, name, {"title": self.title, **context}, status_code=status_code
        )

    async def overview(self, request: Request) -> Response:
        current = await run_in_threadpool(self.observatory.status)
        categories = await run_in_threadpool(self.observatory.categories)
        return self.page(request, "overview.html", status=current, categories=categories)

    async def events(self, request: Request) -> Response:
        try:
            search = _search(request)
        except ValueError as error:
            return self.page(request, "events.html", events=[], search={}, error=str(error))
        found = await run_in_threadpool(self.observatory.events, search)
        following = found[-1]["global_position"] if len(found) == PAGE else None
        return self.page(
            request, "events.html", events=found, search=dict(request.query_params),
            following=following, error=None,
        )  # fmt: skip

    async def event(self, request: Request) -> Response:
        chain = await run_in_threadpool(self.observatory.chain, request.path_params["id"])
        if chain is None:
            return self.page(request, "missing.html", what="No such event", status_code=404)
        return self.page(request, "event.html", chain=chain, chain_svg=chain_picture(chain))

    async def dead_letters(self, request: Request) -> Response:
        handler = request.path_params["handler"]
        try:
            letters = await run_in_threadpool(self.observatory.dead_letters, handler)
        except PgstoreError as error:
            return self.page(request, "missing.html", what=str(error), status_code=404)
        return self.page(request, "dead_letters.html", handler=handler, letters=letters)


class Api:
    """The same data as JSON (`/api/status` is `pgstore status --json`)."""

    def __init__(self, observatory: Observatory) -> None:
        self.observatory = observatory

    async def status(self, request: Request) -> Response:
        return JSONResponse((await run_in_threadpool(self.observatory.status)).to_dict())

    async def categories(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.observatory.categories))

    async def events(self, request: Request) -> Response:
        try:
            search = _search(request)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(await run_in_threadpool(self.observatory.events, search))

    async def event(self, request: Request) -> Response:
        chain = await run_in_threadpool(self.observatory.chain, request.path_params["id"])
        if chain is None:
            return JSONResponse({"error": "no such event"}, status_code=404)
        return JSONResponse(chain)

    async def dead_letters(self, request: Request) -> Response:
        try:
            letters = await run_in_threadpool(
                self.observatory.dead_letters, request.path_params["handler"]
            )
        except PgstoreError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        return JSONResponse(letters)


def _search(request: Request) -> Search:
    """The search form's fields; an empty field is no filter. ValueError for a value
    that cannot be one (a time that is not ISO 8601, a position that is not a number)."""
    query = request.query_params

    def given(name: str) -> str | None:
        value = query.get(name, "").strip()
        return value or None

    since = given("since")
    before = given("before")
    return Search(
        category=given("category"),
        stream=given("stream"),
        type=given("type"),
        correlation=given("correlation"),
        since=datetime.fromisoformat(since) if since else None,
        before=int(before) if before else None,
    )
