"""Plain-text tables for the command line."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def table(
    columns: list[str], rows: list[tuple[Any, ...]], *, rule: bool = True, width: int = 80
) -> str:
    """Left-aligned columns; cells longer than `width` are cut with an ellipsis."""
    cells = [[cell(value, width) for value in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [line(columns)]
    if rule:
        lines.append("  ".join("-" * w for w in widths))
    lines += [line(r) for r in cells]
    return "\n".join(lines)


def cell(value: Any, width: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value)
    elif isinstance(value, datetime):
        text = value.isoformat(timespec="milliseconds")
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
