"""pgstore's exceptions, and the one place where database errors become them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import psycopg
import psycopg.errors


class PgstoreError(Exception):
    """pgstore failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(PgstoreError):
    """pgstore is configured wrongly."""


class ServerError(PgstoreError):
    """The embedded PostgreSQL server could not be started or reached."""


class MigrationError(PgstoreError):
    """The database schema cannot be migrated."""


class ValidationError(PgstoreError, ValueError):
    """A model was given values that do not match its fields."""

    def __init__(self, model: str, problems: dict[str, str]) -> None:
        self.model = model
        self.problems = problems
        details = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        super().__init__(f"Invalid {model}: {details}")


class NotFound(PgstoreError, LookupError):
    """No aggregate matches."""


class MultipleFound(PgstoreError, LookupError):
    """More than one aggregate matches a find_by that expects one."""


class AggregateConflict(PgstoreError):
    """The aggregate changed since it was loaded (optimistic concurrency); reload and retry."""


class UnknownEventType(PgstoreError, LookupError):
    """A stored message's type names no event of this domain."""


class StalePosition(PgstoreError):
    """A handler's position moved under a batch; the batch was rolled back."""


class UnknownDeadLetter(NotFound):
    """No dead letter of this handler has that message id."""


class DuplicateCommandError(PgstoreError):
    """A command with this idempotency key was processed already."""

    def __init__(self, message: str | None = None, *, original_result: object = None) -> None:
        super().__init__(message)
        self.original_result = original_result


class NotConfined(ConfigurationError):
    """The connection for `pgstore query` is not a login confined to pgstore_reader."""


class QueryRefused(PgstoreError, ValueError):
    """The query is not a single read-only SELECT of allowed functions."""


class StoreError(PgstoreError):
    """The event store refused an operation.

    Raised from a database error: `sqlstate` and `diagnostic` expose the server's
    own diagnostics, so callers never need to parse the message.
    """

    sqlstate: ClassVar[str | None] = None
    diagnostic: psycopg.errors.Diagnostic | None = None


class WrongExpectedVersion(StoreError):
    """The stream is not at the expected version."""

    sqlstate = "PS001"


class InvalidName(StoreError, ValueError):
    """A stream name, category or message type is not valid."""

    sqlstate = "PS002"


class DuplicateMessageId(StoreError):
    """A message id is already in the store, in another stream or batch."""

    sqlstate = "PS003"


class PayloadTooLarge(StoreError, ValueError):
    """A message's data or metadata is larger than the payload limit."""

    sqlstate = "PS004"


class InvalidMessage(StoreError, ValueError):
    """A message's data or metadata is not a JSON object, or a batch is malformed."""

    sqlstate = "PS005"


class StreamOrderConflict(StoreError):
    """A newer transaction appended to the stream first; retry the whole transaction."""

    sqlstate = "PS006"


class TooManyMessages(StoreError):
    """A transaction appended more messages than pgstore allows in one transaction."""

    sqlstate = "PS007"


class InvalidArgument(StoreError, ValueError):
    """An argument to a store function is out of range."""

    sqlstate = "PS008"


_BY_SQLSTATE: dict[str, type[StoreError]] = {
    cls.sqlstate: cls
    for cls in (
        WrongExpectedVersion,
        InvalidName,
        DuplicateMessageId,
        PayloadTooLarge,
        InvalidMessage,
        StreamOrderConflict,
        TooManyMessages,
        InvalidArgument,
    )
    if cls.sqlstate
}


# Errors of PostgreSQL's own that mean "bad input" to pgstore's functions.
_BY_SQLSTATE["22P05"] = InvalidMessage  # untranslatable character, e.g. \u0000 in JSON
_BY_SQLSTATE["22P02"] = InvalidArgument  # invalid text representation, e.g. a bad uuid


def translate(error: psycopg.Error) -> PgstoreError | psycopg.Error:
    """Return the pgstore exception for a database error, or the error itself."""
    sqlstate = error.sqlstate
    if sqlstate is None and isinstance(error, psycopg.DataError) and "NUL" in str(error):
        # Refused by the driver before it reached the server: text cannot hold NUL.
        return InvalidName(f"Names and types must not contain NUL characters: {error}")
    cls = _BY_SQLSTATE.get(sqlstate) if sqlstate else None
    if cls is None:
        return error
    translated = cls(error.diag.message_primary or str(error))
    translated.diagnostic = error.diag
    return translated


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise pgstore exceptions for the database errors that have one."""
    try:
        yield
    except psycopg.Error as error:
        translated = translate(error)
        if translated is error:
            raise
        raise translated from error
