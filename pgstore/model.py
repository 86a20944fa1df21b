"""Aggregates, events and commands: declared fields, checked on construction and assignment."""

from __future__ import annotations

import dataclasses
import inspect
import operator
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from pgstore import _fields as fields
from pgstore import fields as declared
from pgstore.errors import PgstoreError, UnknownEventType, ValidationError

__all__ = [
    "AggregateRoot",
    "Command",
    "Event",
    "EventRegistry",
    "Model",
    "ValidationError",
    "make_model",
]

if typing.TYPE_CHECKING:
    from pgstore.messages import Message


@typing.dataclass_transform(
    kw_only_default=True,
    field_specifiers=(
        dataclasses.field,
        declared.String,
        declared.Text,
        declared.Identifier,
        declared.Auto,
        declared.Integer,
        declared.Float,
        declared.Boolean,
        declared.Date,
        declared.DateTime,
        declared.List,
        declared.Dict,
    ),
)
class Model:
    """What aggregates, events and commands have in common (fields, validation, JSON).

    Fields are declared as plain type annotations (`count: int = 0`, checked strictly)
    or as Protean's field declarations (`count: Integer(default=0)` or
    `count = Integer(default=0)`, coerced); the styles mix. Values are checked on
    construction and, for aggregates, on every assignment. Subclassing AggregateRoot,
    Event or Command is optional at run time (the decorators add the base), but lets
    type checkers see the fields, ``id`` and ``raise_``.
    """

    __pgstore_fields__: ClassVar[dict[str, fields.Field]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON would store them (dates as ISO 8601 text)."""
        return {
            name: field.to_json(getattr(self, name))
            for name, field in self.__pgstore_fields__.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> typing.Self:
        """Build from stored JSON; unknown keys are ignored (older or newer writers)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__pgstore_fields__})

    def _validate(self) -> None:
        """Check and coerce every field at once (all problems in one error), then
        check each assignment from now on."""
        problems = {}
        for name, field in self.__pgstore_fields__.items():
            try:
                object.__setattr__(self, name, _checked(field, getattr(self, name)))
            except fields.FieldError as error:
                problems[name] = str(error)
        if problems:
            raise ValidationError(type(self).__name__, problems)
        object.__setattr__(self, "_pgstore_checked", True)

    def __setattr__(self, name: str, value: Any) -> None:
        field = self.__pgstore_fields__.get(name)
        if field is not None and self.__dict__.get("_pgstore_checked"):
            try:
                value = _checked(field, value)
            except fields.FieldError as error:
                raise ValidationError(type(self).__name__, {name: str(error)}) from None
        object.__setattr__(self, name, value)


def _checked(field: fields.Field, value: Any) -> Any:
    if value is None and field.required:
        raise fields.FieldError("is required")
    return field.clean(value)


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
    __pgstore_part_of__: ClassVar[type[AggregateRoot] | str | None] = None
    __pgstore_schema_version__: ClassVar[int] = 1

    def __post_init__(self) -> None:
        self._validate()

    @property
    def payload(self) -> dict[str, Any]:
        """The fields as stored (Protean's name for to_dict())."""
        return self.to_dict()

    @classmethod
    def from_message(cls, message: Message) -> typing.Self:
        """The event a stored message carries; it keeps the message as ``_message``, and
        its metadata as ``_metadata`` (``_metadata.headers.id``, ``.type``, ...)."""
        event = cls.from_dict(message.data)
        object.__setattr__(event, "_message", message)  # events are frozen
        object.__setattr__(event, "_metadata", message.envelope)
        return event


class Command(Event):
    """Base of every class decorated with ``@domain.command``: like an event, frozen
    and stored as a message, but it asks for something instead of telling it."""


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
    """Turn a class with field declarations into a validated, keyword-only dataclass of
    `base` (see Model for the styles of declaration)."""
    namespace = dict(cls.__dict__)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    declared = _declared_fields(cls, namespace)
    annotations: dict[str, Any] = {}
    for name, item in declared.items():
        if isinstance(item, fields.Field):
            annotations[name] = Any
            namespace[name] = dataclasses.field(default_factory=item.make_default)
        else:
            annotations[name] = item
    identity = next((n for n, f in declared.items() if getattr(f, "identifier", False)), None)
    if with_id and identity is None and "id" not in declared:
        identity = "id"
        annotations["id"] = Any
        namespace["id"] = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    elif with_id and identity not in (None, "id"):
        # Another field is the identity (`product_id = Identifier(identifier=True)`):
        # `id` reads it, and a new aggregate gets a generated one.
        field = declared[str(identity)]
        if isinstance(field, fields.Field) and field.default is fields._MISSING:
            namespace[str(identity)] = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
        namespace["id"] = property(operator.attrgetter(str(identity)))
    namespace["__annotations__"] = annotations
    bases = cls.__bases__ if cls.__bases__ != (object,) else ()
    if not any(issubclass(b, base) for b in bases):
        bases = (*bases, base)
    new = type(cls.__name__, bases, namespace)
    new.__module__ = cls.__module__
    new.__qualname__ = cls.__qualname__
    data: Any = dataclasses.dataclass(kw_only=True, frozen=frozen, eq=True, repr=not with_id)(new)
    hints = typing.get_type_hints(data, include_extras=False)
    checks: dict[str, fields.Field] = {}
    for item in dataclasses.fields(data):
        if item.name.startswith("_"):
            continue
        declared_field = declared.get(item.name)
        if isinstance(declared_field, fields.Field):
            checks[item.name] = declared_field
        elif item.name == "id":
            checks["id"] = fields.Identifier()
        else:
            checks[item.name] = fields.Typed(hints.get(item.name, Any), _problem)
    if with_id and "id" in checks:  # the generated id comes last, as Protean shows it
        checks["id"] = checks.pop("id")
    data.__pgstore_fields__ = checks
    data.__pgstore_identity__ = identity
    return typing.cast("type[Any]", data)


def _declared_fields(cls: type[Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """Name -> a Field (Protean's style, as annotation or assignment) or a type
    annotation (plain style), in declaration order. Fields assigned as class attributes
    are taken out of `namespace`."""
    module = sys.modules.get(cls.__module__)
    scope = dict(vars(module)) if module else {}
    declared: dict[str, Any] = {}
    for name, annotation in inspect.get_annotations(cls).items():
        value = annotation
        if isinstance(annotation, str):  # `from __future__ import annotations`
            try:
                value = eval(annotation, scope, dict(vars(cls)))
            except Exception:
                value = annotation  # a forward reference: typing resolves it later
        declared[name] = value if isinstance(value, fields.Field) else annotation
    for name, value in list(namespace.items()):
        if isinstance(value, fields.Field):
            declared[name] = value
            del namespace[name]
    return declared


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
