"""pgstore: a PostgreSQL-native event store and exactly-once event dispatcher."""

from __future__ import annotations

from pgstore import fields
from pgstore.dispatch import inline as _inline  # noqa: F401 (plugs sync processing in)
from pgstore.domain import Domain, current_domain
from pgstore.handlers import ANY, apply, handle
from pgstore.messages import Message, NewMessage
from pgstore.model import AggregateRoot, Command, Event, ValidationError
from pgstore.store import EventStore

__all__ = [
    "ANY",
    "AggregateRoot",
    "Command",
    "Domain",
    "Event",
    "EventStore",
    "Message",
    "NewMessage",
    "ValidationError",
    "apply",
    "current_domain",
    "fields",
    "handle",
]
