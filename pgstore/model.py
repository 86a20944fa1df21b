"""Aggregates and events: type-annotated fields, validated on construction, JSON in and out."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from pgstore.errors import PgstoreError, UnknownEventType, ValidationError

__all__ = [
    "AggregateRoot",
    "Event",
    "EventRegistry",
    "Model",
    "ValidationError",
    "make_model",
]

if typing.TYPE_CHECKING:
    from pgstore.messages import Message


@typing.dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field,))
class Model:
    """What aggregates and events have in common (fields, validation, JSON).

    Subclassing AggregateRoot or Event is optional at run time (the decorators add
    the base), but lets type checkers see the fields, ``id`` and ``raise_``.
    """

    __pgstore_fields__: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__pgstore_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> typing.Self:
        """Build from stored JSON; unknown keys are ignored (older or newer writers)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__pgstore_fields__})

    def _validate(self) -> None:
        problems = {
            name: problem
            for name, expected in self.__pgstore_fields__.items()
            if (problem := _problem(getattr(self, name), expected)) is not None
        }
        if problems:
            raise ValidationError(type(self).__name__, problems)


class AggregateRoot(Model):
    """Base of every class decorated with ``@domain.aggregate``."""

    __pgstore_category__: ClassVar[str]
    __pgstore_event_sourced__: ClassVar[bool] = False
    __pgstore_appliers__: ClassVar[dict[str, Callable[[Any, Any], None]]] = {}
    """Event class name -> the @apply method for it."""

    # For type checkers; the decorator gives each aggregate its own id field.
    id: str = dataclasses.field(default="")
    _events: list[Event] = dataclasses.field(init=False, default_factory=list)
    _version: int = dataclasses.field(init=False, default=-1)

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "_events", [])
        object.__setattr__(self, "_version", -1)

    def raise_(self, event: Event) -> None:
        """Record an event; `repository.add(aggregate)` appends it with the aggregate's
        changes, in one transaction. Event-sourced aggregates also apply it now."""
        if self.__pgstore_event_sourced__:
            self._apply(event)
        self._events.append(event)

    @property
    def stream_name(self) -> str:
        return f"{self.__pgstore_category__}-{self.id}"

    def _apply(self, event: Event) -> None:
        applier = self.__pgstore_appliers__.get(type(event).__name__)
        if applier is None:
            raise PgstoreError(
                f"{type(self).__name__} has no @apply method for {type(event).__name__}"
            )
        applier(self, event)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class Event(Model):
    """Base of every class decorated with ``@domain.event``."""

    __pgstore_type__: ClassVar[str]
    __pgstore_part_of__: ClassVar[type[AggregateRoot] | None] = None
    __pgstore_schema_version__: ClassVar[int] = 1

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def from_message(cls, message: Message) -> typing.Self:
        """The event a stored message carries; it keeps the message as ``_message``."""
        event = cls.from_dict(message.data)
        object.__setattr__(event, "_message", message)  # events are frozen
        return event


class EventRegistry(dict[str, type[Event]]):
    """A domain's event classes by stored type (`<domain>.<Event>.v<N>`): the one place
    a stored message's type becomes a class."""

    def __init__(self, domain: str) -> None:
        super().__init__()
        self.domain = domain

    def class_for(
        self, message_type: str, preferred: dict[str, type[Event]] | None = None
    ) -> type[Event] | None:
        """The class for a type: one a handler's @handle named (`preferred`, which may
        be another domain's), else this domain's; None for a type neither knows."""
        return (preferred or {}).get(message_type) or self.get(message_type)

    def event(self, message: Message) -> Event:
        """The event a stored message carries, as this domain's class."""
        event_class = self.class_for(message.type)
        if event_class is None:
            raise UnknownEventType(f"{message.type} is not an event of domain {self.domain}")
        return event_class.from_message(message)


def make_model(cls: type[Any], base: type[Model], *, frozen: bool, with_id: bool) -> type[Any]:
    """Turn a plain annotated class into a validated, keyword-only dataclass of `base`."""
    namespace = dict(cls.__dict__)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    annotations = dict(namespace.get("__annotations__", {}))
    if with_id:
        annotations = {"id": "str", **annotations}
        namespace.setdefault("id", dataclasses.field(default_factory=lambda: str(uuid.uuid4())))
    namespace["__annotations__"] = annotations
    bases = cls.__bases__ if cls.__bases__ != (object,) else ()
    if not any(issubclass(b, base) for b in bases):
        bases = (*bases, base)
    new = type(cls.__name__, bases, namespace)
    new.__module__ = cls.__module__
    new.__qualname__ = cls.__qualname__
    data: Any = dataclasses.dataclass(kw_only=True, frozen=frozen, eq=True, repr=not with_id)(new)
    hints = typing.get_type_hints(data, include_extras=False)
    data.__pgstore_fields__ = {
        f.name: hints.get(f.name, Any)
        for f in dataclasses.fields(data)
        if not f.name.startswith("_")
    }
    return typing.cast("type[Any]", data)


def normalised_name(name: str) -> str:
    """``OrderItem`` -> ``order_item``: the default stream category of an aggregate."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _problem(value: Any, expected: Any) -> str | None:
    """Why `value` does not fit the annotation `expected`, or None if it does."""
    if expected is Any:
        return None
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        if any(_problem(value, option) is None for option in options):
            return None
        others = [option for option in options if option is not type(None)]
        if len(others) == 1:  # Optional[X]: say what is wrong with it as an X
            return _problem(value, others[0])
        return f"expected {_describe(expected)}, got {_describe_value(value)}"
    if expected is type(None):
        return None if value is None else f"expected None, got {_describe_value(value)}"
    container = origin or expected
    if container is float and isinstance(value, int) and not isinstance(value, bool):
        return None
    if isinstance(container, type):
        if value is None:
            return f"required ({_describe(expected)})"
        if container is int and isinstance(value, bool):
            return f"expected int, got {_describe_value(value)}"
        if not isinstance(value, container):
            return f"expected {_describe(expected)}, got {_describe_value(value)}"
        args = typing.get_args(expected)
        if isinstance(value, list) and args:
            for index, item in enumerate(value):
                if (problem := _problem(item, args[0])) is not None:
                    return f"item {index}: {problem}"
        if isinstance(value, dict) and len(args) == 2:
            for key, item in value.items():
                if (problem := _problem(item, args[1])) is not None:
                    return f"key {key!r}: {problem}"
    return None


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} ({text if len(text) <= 40 else text[:39] + '…'})"
