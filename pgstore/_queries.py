"""The named queries of _queries.sql (every statement pgstore runs), as a dict of constants."""

from __future__ import annotations

import re
from pathlib import Path
from typing import LiteralString

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(path: Path) -> dict[str, LiteralString]:
    """Split a file of ``-- name: x`` sections into {name: query}."""
    text = path.read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        # The file ships with the package: its text is ours, never user input.
        queries[name] = "\n".join(lines).strip()
    return queries


QUERIES = load(Path(__file__).with_name("_queries.sql"))
