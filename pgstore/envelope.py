"""The message envelope: the metadata every stored event carries."""

from __future__ import annotations

import uuid
from typing import Any

from pgstore.messages import JsonObject, Message, NewMessage
from pgstore.model import Event


def new_message(
    event: Event,
    stream_name: str,
    handling: Message | None,
    *,
    message_id: uuid.UUID | None = None,
    extra: JsonObject | None = None,
) -> NewMessage:
    """Wrap an event for appending.

    Metadata: ``correlation_id`` (the id of the first message of the causal chain),
    ``causation_id`` (the message whose handling raised this one), ``origin_stream``
    (that message's stream), ``schema_version``, and Message DB's
    ``correlationStreamName``. Id, type, stream, position, global position and time
    are the stored message's own columns.
    """
    message_id = message_id or uuid.uuid4()
    metadata: JsonObject = {
        "schema_version": event.__pgstore_schema_version__,
        "stream": stream_name,
    }
    if handling is None:
        metadata |= {"correlation_id": str(message_id), "causation_id": None, "origin_stream": None}
    else:
        parent = handling.metadata or {}
        metadata |= {
            "correlation_id": parent.get("correlation_id") or str(handling.id),
            "causation_id": str(handling.id),
            "origin_stream": handling.stream_name,
            "correlationStreamName": parent.get("correlationStreamName") or handling.stream_name,
        }
    metadata |= {key: value for key, value in (extra or {}).items() if value is not None}
    return NewMessage(event.__pgstore_type__, event.to_dict(), metadata, message_id)


def origin_stream(message: Message) -> str | None:
    value: Any = (message.metadata or {}).get("origin_stream")
    return value if isinstance(value, str) else None
