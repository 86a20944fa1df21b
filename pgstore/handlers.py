"""Event handlers: ``@handle`` methods, ``@apply`` methods, and what a handler declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pgstore.messages import category, is_category
from pgstore.model import AggregateRoot, Event

ANY = "$any"
"""``@handle(ANY)`` (or ``@handle("$any")``) receives every event of the category."""

F = TypeVar("F", bound=Callable[..., Any])


def handle(event: type[Event] | str) -> Callable[[F], F]:
    """Mark a handler method as handling `event` (a class, or "$any" for all)."""

    def mark(method: F) -> F:
        handled: list[type[Event] | str] = getattr(method, "__pgstore_handles__", [])
        method.__pgstore_handles__ = [*handled, event]  # type: ignore[attr-defined]
        return method

    return mark


def apply(event: type[Event] | str) -> Callable[[F], F]:
    """Mark an event-sourced aggregate's method as applying `event` to its state.

    `event` may be the class or its name, for events declared after the aggregate.
    """

    def mark(method: F) -> F:
        method.__pgstore_applies__ = event if isinstance(event, str) else event.__name__  # type: ignore[attr-defined]
        return method

    return mark


@dataclass
class HandlerSpec:
    """What the dispatcher needs to know about one event handler class."""

    cls: type[Any]
    name: str
    part_of: type[AggregateRoot] | None
    stream_category: str
    source_stream: str | None
    subscription_type: str | None
    subscription_profile: str | None
    subscription_config: dict[str, Any]
    methods: dict[str, list[str]] = field(default_factory=dict)
    """Event type (or "$any") -> names of the methods that handle it, in definition order."""
    event_classes: dict[str, type[Event]] = field(default_factory=dict)
    """Event type -> the class its @handle methods named (it may be another domain's)."""

    @classmethod
    def inspect(cls, handler: type[Any], name: str, **options: Any) -> HandlerSpec:
        spec = cls(cls=handler, name=name, **options)
        for attribute, value in vars(handler).items():
            for event in getattr(value, "__pgstore_handles__", []):
                if isinstance(event, str):
                    if event != ANY:
                        raise TypeError(f"@handle takes an event class or {ANY!r}, not {event!r}")
                    key = event
                else:
                    key = event.__pgstore_type__
                    spec.event_classes[key] = event
                spec.methods.setdefault(key, []).append(attribute)
        if not spec.methods:
            raise TypeError(f"Event handler {handler.__name__} has no @handle methods")
        return spec

    def methods_for(self, event_type: str) -> list[str]:
        return [*self.methods.get(event_type, []), *self.methods.get(ANY, [])]

    def accepts_origin(self, origin_stream: str | None) -> bool:
        """source_stream: only events raised while handling a message of that stream
        (a category matches any of its streams)."""
        if self.source_stream is None:
            return True
        if origin_stream is None:
            return False
        if not is_category(self.source_stream):
            return origin_stream == self.source_stream
        return category(origin_stream) == self.source_stream

    def call_handle_error(self, error: BaseException, message: Any) -> BaseException | None:
        """Call the handler's ``handle_error`` classmethod if it has one.

        Returns the exception ``handle_error`` itself raised, if it did: the caller
        logs it and carries on, as the spec says.
        """
        handle_error = getattr(self.cls, "handle_error", None)
        if handle_error is None:
            return None
        try:
            handle_error(error, message)
        except Exception as secondary:
            return secondary
        return None
