"""The field classes behind pgstore.fields (see there): coercion and checks."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

__all__ = [
    "Auto",
    "Boolean",
    "Date",
    "DateTime",
    "Dict",
    "Field",
    "FieldError",
    "Float",
    "Identifier",
    "Integer",
    "List",
    "String",
    "Text",
]

_MISSING: Any = object()


class FieldError(ValueError):
    """Why a value does not fit a field (collected into a model's ValidationError)."""


class Field:
    """A declared field: written as an annotation (`name: String()`) or an assignment
    (`name = String()`), in either style, beside plain type annotations.

    `required`: None (or missing) is refused. `default`: a value, or a callable that
    makes one. `choices`: the allowed values (a list, or an Enum whose values count).
    `identifier`: the aggregate's id field. Values are coerced as Protean coerces them
    (an Identifier takes an int, a str or a UUID and keeps a str; an Integer takes
    "10"), on construction and on every assignment.
    """

    python_type: type[Any] = object

    def __init__(
        self,
        *,
        required: bool = False,
        default: Any = _MISSING,
        choices: Iterable[Any] | type[enum.Enum] | None = None,
        identifier: bool = False,
        description: str | None = None,
    ) -> None:
        self.required = required
        self.default = default
        self.identifier = identifier
        self.description = description
        if isinstance(choices, type) and issubclass(choices, enum.Enum):
            self.choices: list[Any] | None = [member.value for member in choices]
        else:
            self.choices = list(choices) if choices is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(required={self.required})"

    def make_default(self) -> Any:
        if self.default is _MISSING:
            return None
        return self.default() if callable(self.default) else self.default

    def clean(self, value: Any) -> Any:
        """The value as stored, or FieldError. None passes here (required is checked
        by the model, which sees every field at once)."""
        if value is None:
            return None
        if isinstance(value, enum.Enum):
            value = value.value
        cleaned = self.cast(value)
        if self.choices is not None and cleaned not in self.choices:
            raise FieldError(f"{cleaned!r} is not one of {self.choices}")
        return cleaned

    def cast(self, value: Any) -> Any:
        if not isinstance(value, self.python_type):
            raise FieldError(f"expected {self.python_type.__name__}, got {_describe(value)}")
        return value

    def to_json(self, value: Any) -> Any:
        """The value as JSON stores it."""
        return value


class String(Field):
    """Text of at most `max_length` characters (default 255); numbers become text."""

    python_type = str

    def __init__(
        self, max_length: int | None = 255, min_length: int | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.max_length = max_length
        self.min_length = min_length

    def cast(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float | uuid.UUID):
            raise FieldError(f"expected a string, got {_describe(value)}")
        text = str(value)
        if self.max_length is not None and len(text) > self.max_length:
            raise FieldError(f"at most {self.max_length} characters, not {len(text)}")
        if self.min_length is not None and len(text) < self.min_length:
            raise FieldError(f"at least {self.min_length} characters, not {len(text)}")
        return text


class Text(String):
    """Text of any length."""

    def __init__(self, **options: Any) -> None:
        super().__init__(max_length=None, **options)


class Identifier(Field):
    """An id: an int, a str or a UUID, kept as a str."""

    python_type = str

    def cast(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | uuid.UUID):
            raise FieldError(f"expected an identifier (str, int or UUID), got {_describe(value)}")
        return str(value)


class Auto(Identifier):
    """An id generated when none is given (a UUID, as a str)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("default", lambda: str(uuid.uuid4()))
        options["required"] = False
        super().__init__(**options)


class _Number(Field):
    def __init__(
        self, min_value: float | None = None, max_value: float | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.min_value = min_value
        self.max_value = max_value

    def bounded(self, number: Any) -> Any:
        if self.min_value is not None and number < self.min_value:
            raise FieldError(f"at least {self.min_value}, not {number}")
        if self.max_value is not None and number > self.max_value:
            raise FieldError(f"at most {self.max_value}, not {number}")
        return number


class Integer(_Number):
    """A whole number; "10" and 10.0 become 10."""

    python_type = int

    def cast(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise FieldError(f"expected an integer, got {_describe(value)}")
        if isinstance(value, int):
            return self.bounded(value)
        if isinstance(value, float) and value.is_integer():
            return self.bounded(int(value))
        if isinstance(value, str):
            try:
                return self.bounded(int(value.strip()))
            except ValueError:
                pass
        raise FieldError(f"expected an integer, got {_describe(value)}")


class Float(_Number):
    """A number; ints and numeric strings become floats."""

    python_type = float

    def cast(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise FieldError(f"expected a number, got {_describe(value)}")
        if isinstance(value, int | float):
            return self.bounded(float(value))
        if isinstance(value, str):
            try:
                return self.bounded(float(value))
            except ValueError:
                pass
        raise FieldError(f"expected a number, got {_describe(value)}")


class Boolean(Field):
    """True or False (also "true"/"false", 1/0)."""

    python_type = bool
    _WORDS: ClassVar[dict[str, bool]] = {
        "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False,
    }  # fmt: skip

    def cast(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in self._WORDS:
            return self._WORDS[value.strip().lower()]
        raise FieldError(f"expected a boolean, got {_describe(value)}")


class Date(Field):
    """A date (or its ISO 8601 text); stored as ISO text."""

    python_type = datetime.date

    def cast(self, value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value)
            except ValueError:
                pass
        raise FieldError(f"expected a date, got {_describe(value)}")

    def to_json(self, value: Any) -> Any:
        return value.isoformat() if value is not None else None


class DateTime(Field):
    """A date and time (or its ISO 8601 text); stored as ISO text."""

    python_type = datetime.datetime

    def cast(self, value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return value
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value)
            except ValueError:
                pass
        raise FieldError(f"expected a date and time, got {_describe(value)}")

    def to_json(self, value: Any) -> Any:
        return value.isoformat() if value is not None else None


class List(Field):
    """A list; with `content_type` (a field class or instance, or a type) each item is
    checked and coerced as that field."""

    python_type = list

    def __init__(self, content_type: Any = None, **options: Any) -> None:
        options.setdefault("default", list)
        super().__init__(**options)
        self.content = as_field(content_type) if content_type is not None else None

    def cast(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise FieldError(f"expected a list, got {_describe(value)}")
        if self.content is None:
            return list(value)
        cleaned = []
        for index, item in enumerate(value):
            try:
                cleaned.append(self.content.clean(item))
            except FieldError as error:
                raise FieldError(f"item {index}: {error}") from None
        return cleaned

    def to_json(self, value: Any) -> Any:
        if value is None or self.content is None:
            return value
        return [self.content.to_json(item) for item in value]


class Dict(Field):
    """A JSON object."""

    python_type = dict

    def __init__(self, **options: Any) -> None:
        options.setdefault("default", dict)
        super().__init__(**options)


class Typed(Field):
    """A plain type annotation (`count: int = 0`): checked strictly, not coerced."""

    def __init__(self, annotation: Any, check: Callable[[Any, Any], str | None]) -> None:
        super().__init__()
        self.annotation = annotation
        self._check = check

    def clean(self, value: Any) -> Any:
        problem = self._check(value, self.annotation)  # None too: `x: int` requires one
        if problem is not None:
            raise FieldError(problem)
        return value


_BY_TYPE: dict[Any, type[Field]] = {
    str: String,
    int: Integer,
    float: Float,
    bool: Boolean,
    dict: Dict,
    list: List,
    datetime.date: Date,
    datetime.datetime: DateTime,
}


def as_field(declared: Any) -> Field:
    """A field from what `content_type` (or a similar argument) names."""
    if isinstance(declared, Field):
        return declared
    if isinstance(declared, type) and issubclass(declared, Field):
        return declared(max_length=None) if issubclass(declared, String) else declared()
    if declared in _BY_TYPE:
        return as_field(_BY_TYPE[declared])
    raise TypeError(f"not a field or a field type: {declared!r}")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} ({text if len(text) <= 40 else text[:39] + '…'})"
