"""What every command shares: exit codes, error reporting, the database, parameter types."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
import psycopg

from pgstore import connection, errors
from pgstore.store import EventStore


class Exit(enum.IntEnum):
    """pgstore's exit codes, one meaning each (the README's table is checked against
    this one)."""

    OK = 0
    """success (also: a confirmation answered "no", nothing done)"""
    UNEXPECTED = 1
    """unexpected error"""
    USAGE = 2
    """command-line usage error"""
    INVALID_INPUT = 3
    """invalid input: a bad stream name, malformed, non-object or too deeply nested JSON,
    an oversized payload, a number out of range, a refused query, an unknown dead letter"""
    CONFLICT = 4
    """conflict: wrong expected version, duplicate message id, stream order conflict"""
    UNAVAILABLE = 5
    """database unavailable, or migration refused"""
    CONFIGURATION = 6
    """configuration error: an APP that does not import, an unknown profile or handler,
    no confined login for `pgstore query`"""
    TIMEOUT = 7
    """timed out: a statement or lock timeout (the database answered, in time, no)"""
    INTERRUPTED = 130
    """interrupted (Ctrl-C)"""


# The first matching class decides; more specific classes come first.
_EXIT_CODES: list[tuple[type[BaseException], Exit]] = [
    (errors.ConfigurationError, Exit.CONFIGURATION),
    (errors.WrongExpectedVersion, Exit.CONFLICT),
    (errors.DuplicateMessageId, Exit.CONFLICT),
    (errors.StreamOrderConflict, Exit.CONFLICT),
    (errors.NotFound, Exit.INVALID_INPUT),
    (ValueError, Exit.INVALID_INPUT),
    (RecursionError, Exit.INVALID_INPUT),
    (errors.ServerError, Exit.UNAVAILABLE),
    (errors.MigrationError, Exit.UNAVAILABLE),
    # A statement or lock timeout is an OperationalError to the driver, but the
    # database is there: it said no in time.
    (psycopg.errors.QueryCanceled, Exit.TIMEOUT),
    (psycopg.errors.LockNotAvailable, Exit.TIMEOUT),
    (psycopg.errors.NumericValueOutOfRange, Exit.INVALID_INPUT),
    (psycopg.OperationalError, Exit.UNAVAILABLE),
]

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(error: BaseException) -> Exit:
    return next((code for cls, code in _EXIT_CODES if isinstance(error, cls)), Exit.UNEXPECTED)


def fail(message: str, code: Exit) -> NoReturn:
    click.echo(f"pgstore: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn pgstore's errors into one line on stderr and a meaningful exit code."""
    try:
        yield
    except (errors.PgstoreError, psycopg.Error, ValueError, RecursionError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        fail(message, exit_code(error))


def confirmed(question: str, yes: bool) -> bool:
    """Ask unless --yes; a "no" is not an error: the caller says nothing was done."""
    if yes or click.confirm(question, default=False):
        return True
    click.echo("nothing done")
    return False


class Context:
    """What every command needs: the resolved database, connected lazily."""

    def __init__(self, dsn: str | None = None) -> None:
        self.dsn = dsn
        self._target: connection.Target | None = None

    @property
    def target(self) -> connection.Target:
        if self._target is None:
            self._target = connection.resolve(self.dsn)
        return self._target

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.target.conninfo)

    def store(self, read_dsn: str | None = None) -> EventStore:
        """The store on the database, or, given a standby's `read_dsn`, on that (for
        reads only: a standby refuses writes)."""
        return EventStore.connect(read_dsn or self.target.conninfo, max_size=2)


pass_context = click.make_pass_decorator(Context)

DSN_HELP = (
    "PostgreSQL connection string. Default: $PGSTORE_DSN, else libpq's PG* variables, "
    "else the embedded server."
)


def dsn_option(command: F) -> F:
    """`--dsn` after the subcommand too (`pgstore read x --dsn ...`), as before it."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.ensure_object(Context).dsn = value

    return click.option(
        "--dsn", expose_value=False, callback=remember, is_eager=True, help=DSN_HELP
    )(command)


def read_dsn_option(command: F) -> F:
    """`--read-dsn` (or PGSTORE_READ_DSN): a hot standby to read events from."""
    return click.option(
        "--read-dsn",
        envvar="PGSTORE_READ_DSN",
        metavar="DSN",
        help="A hot standby of the database to read events from (also $PGSTORE_READ_DSN); "
        "positions, effects, locks and LISTEN stay on --dsn.",
    )(command)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class InvalidInput(click.BadParameter):
    """A value on the command line that pgstore cannot use (exit code 3, not 2: the
    command was well formed, its input was not)."""

    exit_code = Exit.INVALID_INPUT


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
