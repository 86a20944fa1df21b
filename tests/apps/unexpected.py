"""A domain whose configuration is not a mapping: pgstore fails in a way it did not
foresee, which must exit 1 ("unexpected error") with the traceback."""

from __future__ import annotations

from typing import Any

from pgstore import Domain, handle

domain = Domain("unexpected")


@domain.event_handler(stream_category="x")
class Handler:
    @handle("$any")
    def any(self, event: Any) -> None: ...


domain.config = ["not", "a", "mapping"]  # type: ignore[assignment]
