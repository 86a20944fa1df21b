"""`pgstore observatory`: the read-only web dashboard."""

from __future__ import annotations

import ipaddress

import click
import uvicorn

from pgstore.app import load_domain
from pgstore.cli._base import (
    Context,
    dsn_option,
    pass_context,
    read_dsn_option,
    reported_errors,
)
from pgstore.observatory import Observatory, ReaderPool, create_app


@click.command()
@click.argument("apps", nargs=-1)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback unless you say otherwise).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=9000, show_default=True)
@click.option("--title", default="pgstore observatory", show_default=True)
@click.option(
    "--query-dsn",
    envvar="PGSTORE_QUERY_DSN",
    help="Read as this login (it must hold pgstore_reader and nothing else). Default: "
    "pgstore's own login pgstore_query.",
)
@read_dsn_option
@dsn_option
@pass_context
def observatory(
    ctx: Context,
    apps: tuple[str, ...],
    host: str,
    port: int,
    title: str,
    query_dsn: str | None,
    read_dsn: str | None,
) -> None:
    """Serve a live dashboard of every stream, handler and dead letter (APP...: also show
    the handlers of these apps that have not run yet). It reads as a confined reader:
    /, /events, /events/ID (with its causation chain), /dead-letters/HANDLER, /api/...,
    /stream (server-sent events) and /metrics (Prometheus)."""
    with reported_errors():
        domains = [load_domain(app) for app in apps]
        pool = ReaderPool(ctx.target.conninfo, reader_conninfo=query_dsn)
        # With a standby, events are read there (as its own login if that is
        # confined, else as pgstore_query); status and LISTEN stay on the primary.
        events_pool = ReaderPool(ctx.target.conninfo, read_conninfo=read_dsn) if read_dsn else pool
        for each in {pool, events_pool}:
            with each.connection():  # fail now, with a clear error, if it cannot read
                pass
        app = create_app(Observatory(pool, domains, events_pool=events_pool), title=title)
    if not _loopback(host):
        click.echo(
            f"pgstore: the observatory listens on {host}: anyone who can reach it sees "
            "every event's data",
            err=True,
        )
    click.echo(f"pgstore: observatory on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
