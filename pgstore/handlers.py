"""Handlers: ``@handle`` methods, ``@apply`` methods, and what a handler declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pgstore.errors import ConfigurationError
from pgstore.messages import category, is_category
from pgstore.model import AggregateRoot, Event, EventRegistry

ANY = "$any"
"""``@handle(ANY)`` (or ``@handle("$any")``) receives the events no other method of the
handler handles."""

BACKOFFS = ("exponential", "linear", "fixed")

F = TypeVar("F", bound=Callable[..., Any])


def handle(event: type[Event] | str) -> Callable[[F], F]:
    """Mark a handler method as handling `event`: a class, its name or stored type
    ("OrderShipped", "shop.OrderShipped.v1"), or "$any" for what nothing else handles."""

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
    """What the dispatcher needs to know about one event or command handler class."""

    cls: type[Any]
    name: str
    part_of: type[AggregateRoot] | str | None
    stream_category: str | None
    source_stream: str | None
    subscription_type: str | None
    subscription_profile: str | None
    subscription_config: dict[str, Any]
    kind: str = "event"
    """"event" or "command"."""
    retries: int = 0
    """How often a ConnectionError or TimeoutError is tried again at once."""
    backoff: str = "exponential"
    methods: dict[str, list[str]] = field(default_factory=dict)
    """Event type -> names of the methods that handle it, in definition order."""
    fallback: str | None = None
    """The "$any" method: called for types no other method handles (the last one wins)."""
    event_classes: dict[str, type[Event]] = field(default_factory=dict)
    """Event type -> the class its @handle methods named (it may be another domain's)."""
    unresolved: dict[str, list[str]] = field(default_factory=dict)
    """Names given to @handle as strings, until the domain resolves them to types."""

    @classmethod
    def inspect(cls, handler: type[Any], name: str, **options: Any) -> HandlerSpec:
        spec = cls(cls=handler, name=name, **options)
        if not isinstance(spec.retries, int) or spec.retries < 0:
            raise ConfigurationError(f"{name}: retries must be 0 or more, not {spec.retries!r}")
        if spec.backoff not in BACKOFFS:
            raise ConfigurationError(
                f"{name}: backoff must be one of {', '.join(BACKOFFS)}, not {spec.backoff!r}"
            )
        found = False
        for attribute, value in vars(handler).items():
            for event in getattr(value, "__pgstore_handles__", []):
                found = True
                if event == ANY:
                    spec.fallback = attribute  # the last one wins, as in Protean
                elif isinstance(event, str):
                    spec.unresolved.setdefault(event, []).append(attribute)
                else:
                    key = event.__pgstore_type__
                    spec.event_classes[key] = event
                    spec.methods.setdefault(key, []).append(attribute)
        if not found:
            raise TypeError(f"Handler {handler.__name__} has no @handle methods")
        return spec

    def resolve_names(self, events: EventRegistry) -> None:
        """Turn @handle("OrderShipped") (a class name or a stored type) into a type."""
        for given, attributes in self.unresolved.items():
            matches = [t for t, c in events.items() if given in (t, c.__name__)]
            key = matches[0] if len(matches) == 1 else given  # else: a stored type
            self.methods.setdefault(key, []).extend(attributes)
        self.unresolved = {}

    def methods_for(self, event_type: str) -> list[str]:
        """The methods to call for a type: those that name it, else the "$any" one."""
        named = self.methods.get(event_type) or self.methods_by_unresolved(event_type)
        if named:
            return named
        return [self.fallback] if self.fallback else []

    def methods_by_unresolved(self, event_type: str) -> list[str]:
        # Before the domain is initialised, a name matches a type it spells.
        short = event_type.split(".")[-2] if event_type.count(".") >= 2 else event_type
        return self.unresolved.get(event_type) or self.unresolved.get(short) or []

    def handles_everything(self) -> bool:
        return self.fallback is not None

    def accepts_origin(self, origin_stream: str | None) -> bool:
        """source_stream: only events raised while handling a message of that stream.
        A category matches each of its streams, and its command streams
        (``<category>:command-<id>``), so a handler can select what a command caused.
        (The same rule as pgstore.from_source() in SQL.)"""
        if self.source_stream is None:
            return True
        if origin_stream is None:
            return False
        if not is_category(self.source_stream):
            return origin_stream == self.source_stream
        return category(origin_stream) in (self.source_stream, f"{self.source_stream}:command")

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
