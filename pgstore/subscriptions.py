"""Subscription types, profiles and settings, resolved per handler with a documented priority."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pgstore.errors import ConfigurationError
from pgstore.handlers import HandlerSpec

EVENT_STORE = "event_store"
STREAM = "stream"
SUBSCRIPTION_TYPES = (EVENT_STORE, STREAM)


# Start from the values of the system the spec comes from
# (../shared/reference/subscriptions.md); a change is noted where it is made.
PROFILES: dict[str, dict[str, Any]] = {
    "production": {
        "subscription_type": STREAM,
        "messages_per_tick": 100,
        "blocking_timeout_ms": 5000,
        "max_retries": 3,
        "retry_delay_seconds": 1,
        "enable_dlq": True,
        "position_update_interval": 10,
    },
    "fast": {
        "subscription_type": STREAM,
        "messages_per_tick": 10,
        "blocking_timeout_ms": 100,
        "max_retries": 2,
        "retry_delay_seconds": 0,
        "enable_dlq": True,
        "position_update_interval": 5,
    },
    "batch": {
        "subscription_type": STREAM,
        "messages_per_tick": 500,
        "blocking_timeout_ms": 10000,
        "max_retries": 5,
        "retry_delay_seconds": 2,
        "enable_dlq": True,
        "position_update_interval": 50,
    },
    "debug": {
        "subscription_type": STREAM,
        "messages_per_tick": 1,
        "blocking_timeout_ms": 1000,
        "max_retries": 1,
        "retry_delay_seconds": 0,
        "enable_dlq": False,
        "position_update_interval": 1,
    },
    "projection": {
        "subscription_type": EVENT_STORE,
        "messages_per_tick": 100,
        # The original has no blocking read for event-store subscriptions (it polls
        # continuously); pgstore waits for a NOTIFY and polls this often as a fallback.
        "blocking_timeout_ms": 5000,
        "max_retries": 3,
        "retry_delay_seconds": 1,
        "enable_dlq": False,
        "position_update_interval": 10,
    },
}

BUILT_IN: dict[str, Any] = {
    # The framework's own default type is event_store; its built-in profile row says
    # stream. pgstore follows the framework: event_store needs nothing but the store.
    "subscription_type": EVENT_STORE,
    "messages_per_tick": 10,
    "blocking_timeout_ms": 5000,
    "max_retries": 3,
    "retry_delay_seconds": 1,
    "enable_dlq": True,
    "position_update_interval": 10,
    # stream only: how long a read message stays invisible to other workers.
    "visibility_timeout_seconds": 30,
    # pgstore's own: how often a message that lost a race (a version or ordering
    # conflict, a serialization failure, a deadlock) is run again at once, on fresh
    # state, before it counts as one ordinary failure. Such a re-run uses no attempt.
    "conflict_retries": 25,
    # pgstore's own, event_store only: split the category into this many partitions
    # (by stream), each with its own position, so `--workers` share the handler. Each
    # stream keeps its order; the category's global order across streams is given up.
    "partitions": 1,
}
# More partitions than this buy nothing on one server and cost a read each per pass.
MAX_PARTITIONS = 256


@dataclass(frozen=True)
class SubscriptionConfig:
    """One handler's resolved settings, and where each came from."""

    subscription_type: str
    messages_per_tick: int
    blocking_timeout_ms: int
    max_retries: int
    retry_delay_seconds: float
    enable_dlq: bool
    position_update_interval: int
    visibility_timeout_seconds: int
    conflict_retries: int
    partitions: int
    sources: dict[str, str]

    @property
    def attempts(self) -> int:
        """max_retries N means N retries after the first attempt: N + 1 attempts."""
        return self.max_retries + 1


def resolve(spec: HandlerSpec, domain_config: dict[str, Any]) -> SubscriptionConfig:
    """Resolve a handler's settings; highest priority last:

    7. built-in defaults
    6. the domain's default profile (``config["subscription"]["profile"]``, or
       Protean's ``config["server"]["default_subscription_profile"]``)
    5. the domain's server-wide defaults (other keys of ``config["subscription"]``;
       Protean's ``server.default_subscription_type`` and ``server.<setting>``)
    4. the handler's section of the domain configuration
       (``config["handlers"][<handler class name>]``, or Protean's
       ``config["server"]["subscriptions"][<handler class name>]``; may name a profile)
    3. the handler's ``subscription_profile``
    2. the handler's ``subscription_type`` (an explicit type beats its profile's, as
       in Protean 0.18, and as a user writing both means)
    1. the handler's ``subscription_config``

    A value of None never overrides. Profile names are case-insensitive. Unknown
    profiles, types and setting names raise ConfigurationError.
    """
    values: dict[str, Any] = dict(BUILT_IN)
    sources = dict.fromkeys(BUILT_IN, "built-in default")
    where = f"handler {spec.name}"

    def overlay(layer: dict[str, Any], source: str) -> None:
        for key, value in layer.items():
            if value is None:
                continue
            if key not in BUILT_IN:
                raise ConfigurationError(
                    f"Unknown subscription setting {key!r} in {source} ({where}); "
                    f"known: {', '.join(sorted(BUILT_IN))}"
                )
            values[key] = value
            sources[key] = source

    def overlay_profile(name: Any, source: str) -> None:
        if name is None:
            return
        if not isinstance(name, str) or name.lower() not in PROFILES:
            raise ConfigurationError(
                f"Unknown subscription profile {name!r} in {source} ({where}); "
                f"known: {', '.join(PROFILES)}"
            )
        overlay(PROFILES[name.lower()], f"{source} ({name.lower()})")

    server = dict(domain_config.get("server") or {})
    server_sections = dict(server.pop("subscriptions", None) or {})
    overlay_profile(server.pop("default_subscription_profile", None), "server default profile")
    overlay(
        {"subscription_type": server.pop("default_subscription_type", None)},
        "server default type",
    )
    overlay({k: v for k, v in server.items() if k in BUILT_IN}, "server defaults")
    server_wide = dict(domain_config.get("subscription") or {})
    overlay_profile(server_wide.pop("profile", None), "domain default profile")
    overlay(server_wide, "domain defaults")
    for sections, label in (
        (server_sections, "server subscriptions section"),
        (domain_config.get("handlers") or {}, "domain handler section"),
    ):
        section = dict(sections.get(spec.cls.__name__) or {})
        overlay_profile(
            section.pop("profile", None) or section.pop("subscription_profile", None),
            f"{label} profile",
        )
        overlay(section, label)
    overlay_profile(spec.subscription_profile, "handler subscription_profile")
    overlay({"subscription_type": spec.subscription_type}, "handler subscription_type")
    overlay(spec.subscription_config, "handler subscription_config")

    if values["subscription_type"] not in SUBSCRIPTION_TYPES:
        raise ConfigurationError(
            f"Unknown subscription type {values['subscription_type']!r} from "
            f"{sources['subscription_type']} ({where}); known: {', '.join(SUBSCRIPTION_TYPES)}"
        )
    for key in (
        "messages_per_tick",
        "blocking_timeout_ms",
        "position_update_interval",
        "visibility_timeout_seconds",
    ):
        if not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 1:
            raise ConfigurationError(
                f"{key} must be a positive integer, not {values[key]!r} ({where})"
            )
    partitions = values["partitions"]
    if (
        not isinstance(partitions, int)
        or isinstance(partitions, bool)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        raise ConfigurationError(
            f"partitions must be an integer from 1 to {MAX_PARTITIONS}, not {partitions!r} "
            f"({where})"
        )
    for key in ("max_retries", "conflict_retries"):
        if not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 0:
            raise ConfigurationError(f"{key} must be 0 or more, not {values[key]!r} ({where})")
    return SubscriptionConfig(**values, sources=sources)
