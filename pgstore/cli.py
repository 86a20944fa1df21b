"""The `pgstore` command line."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
import psycopg

from pgstore import connection, errors
from pgstore import migrate as migrations
from pgstore._tables import table
from pgstore.messages import Message, NewMessage, is_category
from pgstore.server import EmbeddedServer
from pgstore.store import EventStore

# Exit codes (documented in the README).
EXIT_INVALID_INPUT = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_CONFIGURATION = 6
EXIT_TIMEOUT = 7

_EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (errors.ConfigurationError, EXIT_CONFIGURATION),
    (errors.WrongExpectedVersion, EXIT_CONFLICT),
    (errors.DuplicateMessageId, EXIT_CONFLICT),
    (errors.StreamOrderConflict, EXIT_CONFLICT),
    (ValueError, EXIT_INVALID_INPUT),
    (RecursionError, EXIT_INVALID_INPUT),
    (errors.ServerError, EXIT_UNAVAILABLE),
    (errors.MigrationError, EXIT_UNAVAILABLE),
    # A statement or lock timeout is an OperationalError to the driver, but the
    # database is there: it said no in time.
    (psycopg.errors.QueryCanceled, EXIT_TIMEOUT),
    (psycopg.errors.LockNotAvailable, EXIT_TIMEOUT),
    (psycopg.errors.NumericValueOutOfRange, EXIT_INVALID_INPUT),
    (psycopg.OperationalError, EXIT_UNAVAILABLE),
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class InvalidInput(click.BadParameter):
    """A value on the command line that pgstore cannot use (exit code 3, not 2: the
    command was well formed, its input was not)."""

    exit_code = EXIT_INVALID_INPUT


class Int64(click.ParamType[int]):
    """A whole number that fits PostgreSQL's bigint, at least `minimum`."""

    name = "integer"

    def __init__(self, minimum: int = INT64_MIN) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value).strip(), 10)
            except ValueError:
                raise InvalidInput(f"{value!r} is not a whole number", ctx, param) from None
        if not self.minimum <= number <= INT64_MAX:
            raise InvalidInput(
                f"{value} is out of range ({self.minimum} to {INT64_MAX})", ctx, param
            )
        return number


class Seconds(click.ParamType[float]):
    """A duration in seconds, above 0 and at most `maximum`."""

    name = "seconds"

    def __init__(self, maximum: float) -> None:
        self.maximum = maximum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{value!r} is not a number of seconds", ctx, param) from None
        if not 0 < seconds <= self.maximum:
            raise InvalidInput(
                f"{value} must be above 0 and at most {self.maximum:g} seconds", ctx, param
            )
        return seconds


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"pgstore: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn pgstore's errors into one line on stderr and a meaningful exit code."""
    try:
        yield
    except (errors.PgstoreError, psycopg.Error, ValueError) as error:
        code = next((c for cls, c in _EXIT_CODES if isinstance(error, cls)), 1)
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        fail(message, code)


class Context:
    """What every command needs: the resolved database, connected lazily."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn
        self._target: connection.Target | None = None

    @property
    def target(self) -> connection.Target:
        if self._target is None:
            self._target = connection.resolve(self.dsn)
            if self._target.embedded:
                server = EmbeddedServer()
                click.echo(
                    f"pgstore: using the embedded {server.version()} in {server.data_dir} "
                    "(`pgstore server url` prints its address)",
                    err=True,
                )
        return self._target

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.target.conninfo)

    def store(self) -> EventStore:
        return EventStore.connect(self.target.conninfo, max_size=2)


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dsn",
    envvar="PGSTORE_DSN",
    help="PostgreSQL connection string. Default: $PGSTORE_DSN, else libpq's PG* "
    "variables, else the embedded server.",
)
@click.version_option(package_name="pgstore")
@click.pass_context
def main(ctx: click.Context, dsn: str | None) -> None:
    """pgstore: a PostgreSQL event store and exactly-once event dispatcher.

    With no database configured, pgstore starts (or reuses) an embedded PostgreSQL
    in a local data directory; `pgstore server status` says where.
    """
    ctx.obj = Context(dsn)


@main.command()
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
@pass_context
def migrate(
    ctx: Context, show_status: bool, message_store_role: bool, roles: bool, app: str | None
) -> None:
    """Create or upgrade pgstore's schema (safe to run again, and concurrently)."""
    with reported_errors(), ctx.connect() as conn:
        if show_status:
            for state in migrations.status(conn):
                when = (
                    state.applied_at.isoformat(timespec="seconds")
                    if state.applied_at
                    else "pending"
                )
                click.echo(f"{state.migration.path.name:40} {when}")
            return
        applied = migrations.migrate(
            conn, progress=lambda text: click.echo(f"pgstore: {text}", err=True)
        )
        if message_store_role:
            migrations.create_message_store_role(conn)
            click.echo("role message_store: ready")
        if roles:
            migrations.create_roles(conn)
            click.echo("roles pgstore_reader, pgstore_writer, pgstore_dispatcher: ready")
        if app:
            from pgstore.cli_handlers import create_queues

            for line in create_queues(ctx, conn, app):
                click.echo(line)
        click.echo(f"migrated: {len(applied)} migration(s) applied, functions up to date")


@main.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def rebase(ctx: Context, yes: bool) -> None:
    """After copying a store into a new cluster (pg_dump/pg_restore), make new global
    positions land above the copied ones. Appends wait while it runs."""
    if not yes:
        click.confirm("Raise the store's transaction-id offset now?", abort=True)
    with reported_errors(), ctx.connect() as conn:
        old, new = migrations.rebase(conn)
    if old == new:
        click.echo(
            f"nothing to do: new positions already land above the stored ones (offset {new})"
        )
    else:
        click.echo(f"offset {old} -> {new}: new positions land above the stored ones")


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{what} is not valid JSON: {error}", EXIT_INVALID_INPUT)
    except RecursionError:
        fail(f"{what} is nested too deeply (the store's limit is 100 levels)", EXIT_INVALID_INPUT)
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object, not {type(value).__name__}", EXIT_INVALID_INPUT)
    return value


@main.command()
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


@main.command()
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
@pass_context
def read(ctx: Context, name: str, start: int, limit: int, as_json: bool) -> None:
    """Read a stream (NAME with a '-') or a whole category (NAME without one)."""
    with reported_errors(), ctx.store() as store:
        if is_category(name):
            found = store.read_category(name, start, limit)
        else:
            found = store.read_stream(name, start, limit)
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in found], indent=2))
    else:
        print_table(found)


def print_table(found: list[Message]) -> None:
    if not found:
        click.echo("(no messages)")
        return
    header = ["global_position", "stream_name", "position", "type", "time", "data"]
    rows = [(m.global_position, m.stream_name, m.position, m.type, m.time, m.data) for m in found]
    click.echo(table(header, rows, rule=False, width=60))


@main.group()
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
    """Say whether the embedded server runs, and where its data lives."""
    status = EmbeddedServer().status()
    click.echo(f"data directory: {status.data_dir}")
    click.echo(f"version:        {status.version}")
    click.echo(f"running:        {'yes, pid ' + str(status.pid) if status.running else 'no'}")
    if status.url:
        click.echo(f"url:            {status.url}")
    sys.exit(0 if status.running else 1)


@server.command("stop")
def server_stop() -> None:
    """Stop the embedded server."""
    with reported_errors():
        stopped = EmbeddedServer().stop()
    click.echo("stopped" if stopped else "not running")


# The commands that run and operate event handlers register themselves on `main`.
from pgstore import cli_handlers, cli_inspect  # noqa: E402, F401
