"""Commands: `domain.process(command)` runs its handler at once, or queues it for dispatch."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from psycopg.types.json import Jsonb

from pgstore import unit_of_work
from pgstore._queries import QUERIES
from pgstore.envelope import new_message
from pgstore.errors import ConfigurationError, DuplicateCommandError, translated_errors
from pgstore.messages import Message
from pgstore.model import AggregateRoot, Command, EventRegistry, normalised_name

if TYPE_CHECKING:
    from pgstore.handlers import HandlerSpec
    from pgstore.store import EventStore

logger = logging.getLogger(__name__)

# Idempotency keys become message ids in this namespace (with the domain's name), so
# the same key always names the same command.
_KEYS = uuid.UUID("6a0f6f2e-5c3b-4d6e-9c35-0d1c0b8a9e71")


class CommandDomain(Protocol):
    """What processing a command needs of its domain."""

    name: str
    handlers: list[HandlerSpec]
    events: EventRegistry

    @property
    def store(self) -> EventStore: ...


def process(
    domain: CommandDomain,
    command: Command,
    asynchronous: bool,
    idempotency_key: str | None,
    raise_on_duplicate: bool,
) -> Any:
    """See Domain.process."""
    if not isinstance(command, Command):
        raise TypeError(f"domain.process takes a command, not {type(command).__name__}")
    spec, method = _handler_for(domain, command)
    message_id = (
        uuid.uuid5(_KEYS, f"{domain.name}/{idempotency_key}") if idempotency_key else uuid.uuid4()
    )
    stream = command_stream(command, message_id)
    with unit_of_work.opened(domain.store) as unit:
        outgoing = new_message(
            command,
            stream,
            unit.handling,
            message_id=message_id,
            extra={"idempotency_key": idempotency_key},
        )
        if asynchronous:
            return _queue(domain, unit, stream, outgoing, raise_on_duplicate)
        with translated_errors():
            done = unit.conn.execute(QUERIES["command_result"], {"id": message_id}).fetchone()
        if done is not None:
            if raise_on_duplicate:
                raise DuplicateCommandError(
                    f"Command {command.__pgstore_type__} with idempotency key "
                    f"{idempotency_key!r} was processed already",
                    original_result=done[0],
                )
            return done[0]
        handling = Message(
            message_id, stream, outgoing.type, -1, -1, outgoing.data, outgoing.metadata,
            datetime.now(UTC),
        )  # fmt: skip
        handled = handling.envelope
        object.__setattr__(command, "_metadata", handled)  # commands are frozen
        object.__setattr__(command, "_message", handling)
        with unit_of_work.joined(unit_of_work.UnitOfWork(unit.conn, handling, unit.after_commit)):
            result = getattr(spec.cls(), method)(command)
        if idempotency_key is not None:
            with translated_errors():
                unit.conn.execute(
                    QUERIES["command_result_record"],
                    {
                        "id": message_id,
                        "domain": domain.name,
                        "type": outgoing.type,
                        "result": Jsonb(_jsonable(result)),
                    },
                )
        return result


def _queue(
    domain: CommandDomain,
    unit: unit_of_work.UnitOfWork,
    stream: str,
    outgoing: Any,
    raise_on_duplicate: bool,
) -> int:
    """Append the command to its stream for `pgstore dispatch`; a repeat of the same
    idempotency key is the same message (appended once)."""
    with translated_errors():
        seen = unit.conn.execute(QUERIES["message_exists"], {"id": outgoing.id}).fetchone()
    if seen is not None and raise_on_duplicate:
        raise DuplicateCommandError(
            f"Command {outgoing.type} with this idempotency key was queued already",
            original_result=None,
        )
    (appended,) = domain.store.append(stream, outgoing, conn=unit.conn)
    return appended.global_position


def command_stream(command: Command, message_id: uuid.UUID) -> str:
    """``<aggregate category>:command-<id>``: the id is the command's field that names
    the aggregate (its identity field, or ``<aggregate>_id``), else the message's."""
    aggregate = command.__pgstore_part_of__
    if not isinstance(aggregate, type) or not issubclass(aggregate, AggregateRoot):
        raise ConfigurationError(
            f"Command {type(command).__name__}: part_of must name an aggregate of the domain"
        )
    identity = getattr(aggregate, "__pgstore_identity__", None) or "id"
    for field in (identity, f"{normalised_name(aggregate.__name__)}_id"):
        value = getattr(command, field, None) if field in command.__pgstore_fields__ else None
        if value:
            return f"{aggregate.__pgstore_category__}:command-{value}"
    return f"{aggregate.__pgstore_category__}:command-{message_id}"


def _handler_for(domain: CommandDomain, command: Command) -> tuple[HandlerSpec, str]:
    command_type = command.__pgstore_type__
    found = [
        (spec, method)
        for spec in domain.handlers
        if spec.kind == "command"
        for method in spec.methods_for(command_type)
    ]
    if len(found) != 1:
        raise ConfigurationError(
            f"{'No' if not found else 'More than one'} command handler method for "
            f"{type(command).__name__} in domain {domain.name}"
        )
    return found[0]


def _jsonable(result: Any) -> Any:
    """A handler's result as the idempotency record keeps it (its repr if not JSON)."""
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        return {"repr": repr(result)}
    return result


def warn_about_idle_handlers(domain: CommandDomain) -> None:
    """A handler listening to a category that no declared event or command uses is
    probably a mistake (a typo in stream_category, a missing part_of): say so once."""
    used: set[str] = set()
    for message_class in domain.events.values():
        part_of = message_class.__pgstore_part_of__
        if not isinstance(part_of, type):
            return  # some part_of is unknown: the check would cry wolf
        suffix = ":command" if issubclass(message_class, Command) else ""
        used.add(part_of.__pgstore_category__ + suffix)
    for spec in domain.handlers:
        if spec.stream_category not in used:
            logger.warning(
                "%s listens to category %r, which no declared %s uses (declared: %s)",
                spec.name,
                spec.stream_category,
                spec.kind,
                ", ".join(sorted(used)) or "none",
            )
