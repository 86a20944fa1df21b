"""`pgstore server`: the embedded PostgreSQL used when no database is configured."""

from __future__ import annotations

import sys

import click

from pgstore.cli._base import Exit, reported_errors
from pgstore.server import EmbeddedServer


@click.group()
def server() -> None:
    """The embedded PostgreSQL server (used when no database is configured)."""


@server.command("url")
def server_url() -> None:
    """Print the embedded server's URL, starting it if needed: psql "$(pgstore server url)"."""
    with reported_errors():
        click.echo(EmbeddedServer().ensure_running())


@server.command("start")
def server_start() -> None:
    """Start the embedded server (or find it running) and print where it is."""
    with reported_errors():
        embedded = EmbeddedServer()
        url = embedded.ensure_running()
    click.echo(f"running: {url} (data in {embedded.data_dir})")


@server.command("status")
def server_status() -> None:
    """Say whether the embedded server runs, and where its data lives (exit 1 when not)."""
    status = EmbeddedServer().status()
    click.echo(f"data directory: {status.data_dir}")
    click.echo(f"version:        {status.version}")
    click.echo(f"running:        {'yes, pid ' + str(status.pid) if status.running else 'no'}")
    if status.url:
        click.echo(f"url:            {status.url}")
    sys.exit(Exit.OK if status.running else Exit.UNEXPECTED)


@server.command("stop")
def server_stop() -> None:
    """Stop the embedded server."""
    with reported_errors():
        stopped = EmbeddedServer().stop()
    click.echo("stopped" if stopped else "not running")
