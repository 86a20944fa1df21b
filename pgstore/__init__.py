"""pgstore: a PostgreSQL-native event store and exactly-once event dispatcher."""

from __future__ import annotations

from pgstore.domain import Domain
from pgstore.handlers import ANY, apply, handle
from pgstore.messages import Message, NewMessage
from pgstore.model import AggregateRoot, Event, ValidationError
from pgstore.store import EventStore

__all__ = [
    "ANY",
    "AggregateRoot",
    "Domain",
    "Event",
    "EventStore",
    "Message",
    "NewMessage",
    "ValidationError",
    "apply",
    "handle",
]
