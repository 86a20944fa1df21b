"""`pgstore migrate`, `rebase`, `append` and `read`: the store itself."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import click

from pgstore import migrate as migrations
from pgstore import operations
from pgstore.app import load_domain
from pgstore.cli import _render
from pgstore.cli._base import (
    Context,
    Exit,
    Int64,
    confirmed,
    dsn_option,
    fail,
    pass_context,
    read_dsn_option,
    reported_errors,
)
from pgstore.domain import Domain
from pgstore.errors import MigrationError
from pgstore.messages import NewMessage, is_category


@click.command()
@click.option("--status", "show_status", is_flag=True, help="List applied and pending migrations.")
@click.option(
    "--message-store-role",
    is_flag=True,
    help="Also create the `message_store` login role that Message DB clients connect as.",
)
@click.option(
    "--roles",
    is_flag=True,
    help="Also create the roles pgstore_reader, pgstore_writer, pgstore_dispatcher "
    "and the login pgstore_query.",
)
@click.option(
    "--app",
    help="Also create the pgmq queues of this APP's stream handlers (module or module:domain).",
)
@dsn_option
@pass_context
def migrate(
    ctx: Context, show_status: bool, message_store_role: bool, roles: bool, app: str | None
) -> None:
    """Create or upgrade pgstore's schema (safe to run again, and concurrently)."""
    with reported_errors(), ctx.connect() as conn:
        if show_status:
            states = migrations.status(conn)
            for state in states:
                click.echo(f"{state.migration.path.name:40} {state.describe()}")
            problems = [state for state in states if state.problem]
            if problems:
                raise MigrationError(
                    f"{len(problems)} migration(s) cannot be trusted: "
                    + ", ".join(f"{s.migration.path.name} ({s.problem})" for s in problems)
                    + "; `pgstore migrate` refuses to run"
                )
            return
        with _render.progress("migrating") as bar:

            def report(text: str) -> None:
                if bar.disable:
                    click.echo(f"pgstore: {text}", err=True)
                bar.set_postfix_str(text[:60])
                bar.update()

            applied = migrations.migrate(conn, progress=report)
        if message_store_role:
            migrations.create_message_store_role(conn)
            click.echo("role message_store: ready")
        if roles:
            migrations.create_roles(conn)
            click.echo(
                "roles pgstore_reader, pgstore_writer, pgstore_dispatcher, login "
                "pgstore_query: ready"
            )
        if app:
            for handler, queue, dead_letter_queue in create_queues(conn, load_domain(app)):
                click.echo(f"{handler}: {queue}, {dead_letter_queue}")
        click.echo(f"migrated: {len(applied)} migration(s) applied, functions up to date")


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@dsn_option
@pass_context
def rebase(ctx: Context, yes: bool) -> None:
    """After copying a store into a new cluster (pg_dump/pg_restore), make new global
    positions land above the copied ones. Appends wait while it runs."""
    if not confirmed("Raise the store's transaction-id offset now?", yes):
        return
    with reported_errors(), ctx.connect() as conn:
        old, new = migrations.rebase(conn)
    if old == new:
        click.echo(
            f"nothing to do: new positions already land above the stored ones (offset {new})"
        )
    else:
        click.echo(f"offset {old} -> {new}: new positions land above the stored ones")


def create_queues(conn: Any, domain: Domain) -> list[tuple[str, str, str]]:
    """Create the domain's stream handlers' queues, with a bar for a large app."""
    streams = len(domain.handlers)
    with _render.progress("creating queues", total=streams, unit="handler") as bar:

        def created(_: str) -> None:
            bar.update()

        return operations.create_queues(conn, domain, created=created)


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{what} is not valid JSON: {error}", Exit.INVALID_INPUT)
    except RecursionError:
        fail(f"{what} is nested too deeply (the store's limit is 100 levels)", Exit.INVALID_INPUT)
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object, not {type(value).__name__}", Exit.INVALID_INPUT)
    return value


@click.command()
@click.argument("stream")
@click.argument("type")
@click.argument("data", default="{}")
@click.option("--metadata", help="Metadata as a JSON object.")
@click.option(
    "--expected-version",
    type=Int64(minimum=-1),
    help="Fail unless the stream is at this version (-1: new stream).",
)
@click.option(
    "--id", "message_id", type=click.UUID, help="Message id (re-appending the same id is a no-op)."
)
@dsn_option
@pass_context
def append(
    ctx: Context,
    stream: str,
    type: str,
    data: str,
    metadata: str | None,
    expected_version: int | None,
    message_id: uuid.UUID | None,
) -> None:
    """Append one message of TYPE with DATA (a JSON object; '-' reads stdin) to STREAM.

    Prints the message's stream position and global position.
    """
    payload = parse_json_object(sys.stdin.read() if data == "-" else data, "DATA")
    meta = parse_json_object(metadata, "--metadata") if metadata is not None else None
    message = NewMessage(type, payload, meta, message_id or uuid.uuid4())
    with reported_errors(), ctx.store() as store:
        (appended,) = store.append(stream, message, expected_version)
    click.echo(f"{stream} position {appended.position} global_position {appended.global_position}")


@click.command()
@click.argument("name")
@click.option(
    "--from",
    "start",
    type=Int64(minimum=0),
    default=0,
    show_default=True,
    help="Stream position (for a stream) or global position (for a category).",
)
@click.option(
    "--limit",
    type=Int64(minimum=-1),
    default=100,
    show_default=True,
    help="At most this many (-1: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@read_dsn_option
@dsn_option
@pass_context
def read(
    ctx: Context, name: str, start: int, limit: int, as_json: bool, read_dsn: str | None
) -> None:
    """Read a stream (NAME with a '-') or a whole category (NAME without one)."""
    with reported_errors(), ctx.store(read_dsn) as store:
        if is_category(name):
            found = store.read_category(name, start, limit)
        else:
            found = store.read_stream(name, start, limit)
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in found], indent=2))
    else:
        click.echo(_render.messages(found))
