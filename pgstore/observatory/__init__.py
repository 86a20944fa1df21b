"""The observatory: every stream, handler and dead letter, live, from PostgreSQL alone."""

from __future__ import annotations

from pgstore.observatory.app import create_app
from pgstore.observatory.data import Observatory, RateMeter, ReaderPool, Search

__all__ = ["Observatory", "RateMeter", "ReaderPool", "Search", "create_app"]
