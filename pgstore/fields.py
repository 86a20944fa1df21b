"""Protean's field declarations: ``name = String(max_length=50, required=True)``.

Declared on aggregates, events and commands, as an assignment (``name = String()``) or
as Protean's annotation (``name: String()``), beside plain type annotations. Values are
coerced as Protean coerces them (an Identifier takes an int, a str or a UUID and keeps
a str; an Integer takes "10") and checked on construction and on every assignment.

Common options: ``required``, ``default`` (a value, or a callable that makes one),
``choices`` (a list, or an Enum), ``identifier`` (the aggregate's id field),
``description``. To a type checker each field is the value it holds (``Integer()`` is
an ``int``): write ``in_stock: int = Integer(min_value=0)`` and mypy checks both the
constructor and ``stock.in_stock -= 1`` (an annotation that is a call, Protean's
``in_stock: Integer()``, is not a type to it; pgstore accepts all three spellings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgstore._fields import Field, FieldError

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

if TYPE_CHECKING:
    import datetime

    def String(
        max_length: int | None = 255, min_length: int | None = None, **options: Any
    ) -> str: ...
    def Text(**options: Any) -> str: ...
    def Identifier(**options: Any) -> str: ...
    def Auto(**options: Any) -> str: ...
    def Integer(
        min_value: float | None = None, max_value: float | None = None, **options: Any
    ) -> int: ...
    def Float(
        min_value: float | None = None, max_value: float | None = None, **options: Any
    ) -> float: ...
    def Boolean(**options: Any) -> bool: ...
    def Date(**options: Any) -> datetime.date: ...
    def DateTime(**options: Any) -> datetime.datetime: ...
    def List(content_type: Any = None, **options: Any) -> list[Any]: ...
    def Dict(**options: Any) -> dict[str, Any]: ...
else:
    from pgstore._fields import (
        Auto,
        Boolean,
        Date,
        DateTime,
        Dict,
        Float,
        Identifier,
        Integer,
        List,
        String,
        Text,
    )
