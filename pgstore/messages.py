"""Messages as pgstore stores and returns them: frozen dataclasses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonObject = dict[str, Any]


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
    """True when `name` has no '-' and so names a category."""
    return "-" not in name


def message_from_dict(data: JsonObject) -> Message:
    """The inverse of Message.to_dict (a message as queues and dead letters carry it)."""
    return Message(
        id=uuid.UUID(data["id"]),
        stream_name=data["stream_name"],
        type=data["type"],
        position=int(data["position"]),
        global_position=int(data["global_position"]),
        data=data["data"],
        metadata=data.get("metadata"),
        time=datetime.fromisoformat(data["time"]),
    )
