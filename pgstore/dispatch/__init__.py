"""The dispatcher: runs a domain's event handlers, each handler's effects exactly once."""

from __future__ import annotations

from pgstore.dispatch.dispatcher import Dispatcher

__all__ = ["Dispatcher"]
