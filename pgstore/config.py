"""A domain's configuration: pgstore's keys and Protean's, in one mutable mapping."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

# pgstore's own keys (see pgstore.subscriptions.resolve), and Protean's that pgstore
# honours: event_processing / command_processing ("sync" or "async"),
# message_processing, and the `server` table (default_subscription_type,
# default_subscription_profile, subscriptions.<Handler>, and every subscription setting
# such as messages_per_tick as a server-wide default).
KNOWN = {
    "subscription",
    "handlers",
    "event_processing",
    "command_processing",
    "message_processing",
    "server",
}
# Protean's keys for things pgstore does itself (PostgreSQL is the database, the event
# store and the broker): accepted, and said once to have no effect.
NOT_USED = {
    "databases",
    "brokers",
    "caches",
    "event_store",
    "identity_strategy",
    "identity_type",
    "custom",
    "snapshot_threshold",
    "testing",
    "debug",
    "secret_key",
    "enable_outbox",
    "outbox",
    "message_store",
}
PROCESSING = ("sync", "async")


class DomainConfig(dict[str, Any]):
    """``domain.config``: a dict you may change until the domain is initialised.

    Unknown keys (and Protean's keys for databases, brokers and the like, which pgstore
    replaces with PostgreSQL) are warned about once, when the domain is initialised.
    """

    def __init__(self, initial: dict[str, Any]) -> None:
        super().__init__(initial)
        self._warned: set[str] = set()

    def warn_unknown(self) -> None:
        for key in sorted(set(self) - KNOWN - self._warned):
            self._warned.add(key)
            if key in NOT_USED:
                logger.warning(
                    "domain config %r has no effect in pgstore (PostgreSQL is the database, "
                    "the event store and the broker)",
                    key,
                )
            else:
                logger.warning(
                    "domain config %r is not a setting pgstore knows (known: %s); ignored",
                    key,
                    ", ".join(sorted(KNOWN)),
                )
        for key in ("event_processing", "command_processing", "message_processing"):
            value = self.get(key)
            if value is not None and value not in PROCESSING and key not in self._warned:
                self._warned.add(key)
                logger.warning("domain config %s=%r: expected 'sync' or 'async'", key, value)

    def server(self) -> dict[str, Any]:
        """Protean's `server` table (empty when not given)."""
        value = self.get("server") or {}
        return dict(value) if isinstance(value, dict) else {}
