"""A handler module that fails to import, for the CLI's error handling."""

from __future__ import annotations

raise RuntimeError("this module is broken on purpose")
