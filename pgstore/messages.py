"""Messages as pgstore stores and returns them: frozen dataclasses."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pgstore.errors import PgstoreError

JsonObject = dict[str, Any]


class Undecodable(PgstoreError):
    """A stored message cannot be read as a message; it carries what could be read.

    Raised (and caught) inside the dispatcher: the message goes to the dead letters.

    `malformed`: not even its id, stream, type and positions could be read (a queue
    body that no feeder wrote), so nothing tells which handlers it was meant for.
    """

    def __init__(
        self,
        reason: str,
        placeholder: Message,
        data: str | None,
        metadata: str | None,
        *,
        malformed: bool = False,
    ) -> None:
        super().__init__(reason)
        self.placeholder = placeholder
        self.malformed = malformed
        self.raw_data = data
        self.raw_metadata = metadata


@dataclass(frozen=True)
class NewMessage:
    """A message to append. Give it a stable `id` to make the append idempotent."""

    type: str
    data: JsonObject
    metadata: JsonObject | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Appended:
    """Where an appended message landed."""

    id: uuid.UUID
    position: int
    global_position: int


@dataclass(frozen=True)
class Headers:
    """A message's headers, as Protean's handlers read them (``message.metadata.headers``)."""

    id: str
    type: str
    stream: str
    time: datetime
    idempotency_key: str | None = None


class Metadata(dict[str, Any]):
    """A message's metadata: the stored JSON object, plus Protean's spellings of what
    the message carries (``.headers.type``, ``.headers.idempotency_key``, ...)."""

    def __init__(self, stored: JsonObject | None, headers: Headers) -> None:
        super().__init__(stored or {})
        self.headers = headers

    @property
    def timestamp(self) -> datetime:
        return self.headers.time


@dataclass(frozen=True)
class Message:
    """A stored message."""

    id: uuid.UUID
    stream_name: str
    type: str
    position: int
    global_position: int
    data: JsonObject
    metadata: JsonObject | None
    time: datetime

    @property
    def category(self) -> str:
        return category(self.stream_name)

    @property
    def envelope(self) -> Metadata:
        """The metadata with the message's headers (what ``event._metadata`` is)."""
        if isinstance(self.metadata, Metadata):
            return self.metadata
        key = (self.metadata or {}).get("idempotency_key")
        headers = Headers(str(self.id), self.type, self.stream_name, self.time, key)
        return Metadata(self.metadata, headers)

    def to_dict(self) -> JsonObject:
        return {
            "id": str(self.id),
            "stream_name": self.stream_name,
            "type": self.type,
            "position": self.position,
            "global_position": self.global_position,
            "data": self.data,
            "metadata": self.metadata,
            "time": self.time.isoformat(),
        }


def category(stream_name: str) -> str:
    """The part of a stream name before the first '-' (pgstore.category() in SQL)."""
    return stream_name.split("-", 1)[0]


def is_category(name: str) -> bool:
    """True when `name` has no '-' and so names a category (the one category rule,
    the same as pgstore.is_category() in SQL)."""
    return "-" not in name


def category_problem(name: object) -> str | None:
    """Why `name` cannot be a category, or None: the rules of pgstore.check_name()."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if not is_category(name):
        return "must not contain '-' (that makes it a stream name)"
    if len(name) > 500 or len(name.encode()) > 1000:
        return "must be at most 500 characters and 1000 bytes"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "must not contain control characters"
    return None


def decode(
    message_id: Any,
    stream_name: Any,
    type: Any,
    position: Any,
    global_position: Any,
    data: str | None,
    metadata: str | None,
    time: Any,
) -> Message:
    """A message from its columns with data and metadata as JSON text, as the
    dispatcher reads them: a message that cannot be one (JSON nested deeper than
    Python's decoder goes, data or metadata that is not an object, a malformed queue
    body) raises Undecodable for that message alone, carrying what could be read."""
    try:
        placeholder = Message(
            id=message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id)),
            stream_name=str(stream_name),
            type=str(type),
            position=int(position),
            global_position=int(global_position),
            data={},
            metadata=None,
            time=time if isinstance(time, datetime) else datetime.fromisoformat(str(time)),
        )
    except (TypeError, ValueError) as error:
        raise Undecodable(
            f"malformed message: {error}",
            _salvage(message_id, stream_name, type, position, global_position),
            data,
            metadata,
            malformed=True,
        ) from error
    try:
        decoded_data = json.loads(data) if data is not None else None
        decoded_metadata = json.loads(metadata) if metadata is not None else None
    except (RecursionError, ValueError) as error:
        reason = "nested too deeply to decode" if isinstance(error, RecursionError) else error
        raise Undecodable(
            f"cannot decode its JSON: {reason}", placeholder, data, metadata
        ) from None
    if not isinstance(decoded_data, dict):
        raise Undecodable(
            f"data is {_kind(decoded_data)}, not a JSON object", placeholder, data, metadata
        )
    if decoded_metadata is not None and not isinstance(decoded_metadata, dict):
        raise Undecodable(
            f"metadata is {_kind(decoded_metadata)}, not a JSON object",
            placeholder,
            data,
            metadata,
        )
    message = Message(
        placeholder.id,
        placeholder.stream_name,
        placeholder.type,
        placeholder.position,
        placeholder.global_position,
        decoded_data,
        decoded_metadata,
        placeholder.time,
    )
    if decoded_metadata is None:
        return message
    # handle_error's message: `message.metadata.headers.type` works as in Protean.
    return dataclasses.replace(message, metadata=message.envelope)


def _salvage(
    message_id: Any, stream_name: Any, type: Any, position: Any, global_position: Any
) -> Message:
    """What a malformed message's dead letter records: each field that can be read."""

    def attempt(convert: Any, value: Any, default: Any) -> Any:
        try:
            return convert(value)
        except (TypeError, ValueError):
            return default

    return Message(
        id=attempt(lambda v: uuid.UUID(str(v)), message_id, uuid.uuid4()),
        stream_name=str(stream_name or "unknown-unknown"),
        type=str(type or "unknown"),
        position=attempt(int, position, -1),
        global_position=attempt(int, global_position, -1),
        data={},
        metadata=None,
        time=datetime.now(UTC),
    )


def _kind(value: Any) -> str:
    return "missing" if value is None else f"a JSON {type(value).__name__}"
