"""The domain model without a database: fields, validation, JSON, declarations."""

from __future__ import annotations

from typing import Any

import pytest

from pgstore import ANY, AggregateRoot, Domain, Event, ValidationError, handle
from pgstore.errors import ConfigurationError
from pgstore.model import normalised_name
from pgstore.subscriptions import PROFILES, resolve

domain = Domain("unit")


@domain.aggregate
class OrderItem(AggregateRoot):
    sku: str
    quantity: int
    price: float = 0.0
    tags: list[str] | None = None
    notes: dict[str, int] | None = None


@domain.event(part_of=OrderItem, schema_version=2)
class ItemAdded(Event):
    sku: str


def test_fields_are_validated_with_clear_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        OrderItem(sku=3, quantity="ten")  # type: ignore[arg-type]
    message = str(caught.value)
    assert "Invalid OrderItem" in message
    assert "sku: expected str, got int (3)" in message
    assert "quantity: expected int, got str ('ten')" in message
    with pytest.raises(ValidationError, match="quantity: expected int, got bool"):
        OrderItem(sku="a", quantity=True)
    with pytest.raises(ValidationError, match="item 1: expected str"):
        OrderItem(sku="a", quantity=1, tags=["x", 2])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="key 'a': expected int"):
        OrderItem(sku="a", quantity=1, notes={"a": "b"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        OrderItem(sku="a")  # type: ignore[call-arg]
    assert OrderItem(sku="a", quantity=1, price=2).price == 2  # an int is a fine float


def test_json_round_trip_and_ids() -> None:
    item = OrderItem(sku="a", quantity=2, tags=["new"])
    data = item.to_dict()
    assert data == {
        "id": item.id,
        "sku": "a",
        "quantity": 2,
        "price": 0.0,
        "tags": ["new"],
        "notes": None,
    }
    again = OrderItem.from_dict({**data, "unknown_later_field": 1})
    assert again == item
    assert OrderItem(sku="b", quantity=1).id != item.id
    assert item.stream_name == f"order_item-{item.id}"


def test_events_are_frozen_and_typed() -> None:
    event = ItemAdded(sku="a")
    assert ItemAdded.__pgstore_type__ == "unit.ItemAdded.v2"
    with pytest.raises(AttributeError):
        event.sku = "b"


def test_raise_collects_events() -> None:
    item = OrderItem(sku="a", quantity=1)
    item.raise_(ItemAdded(sku="a"))
    assert item._events == [ItemAdded(sku="a")]


def test_normalised_category_names() -> None:
    assert normalised_name("OrderItem") == "order_item"
    assert normalised_name("Inventory") == "inventory"
    assert normalised_name("HTTPRequest") == "httprequest"


def test_bad_declarations() -> None:
    with pytest.raises(ConfigurationError, match=r"X: stream_category 'a-b' must not contain '-'"):
        domain.aggregate(stream_category="a-b")(type("X", (), {"__annotations__": {}}))
    with pytest.raises(TypeError, match="no @handle methods"):
        domain.event_handler(stream_category="x")(type("Empty", (), {}))
    with pytest.raises(ConfigurationError, match="give part_of or stream_category"):

        @domain.event_handler
        class Nowhere:
            @handle(ANY)
            def anything(self, event: Any) -> None: ...


def handler_spec(**options: Any) -> Any:
    local = Domain("config")

    @local.event_handler(stream_category="x", **options)
    class Handler:
        @handle(ANY)
        def anything(self, event: Any) -> None: ...

    return local.handlers[0]


def test_configuration_priority() -> None:
    domain_config = {
        "subscription": {"profile": "batch", "max_retries": 7},
        "handlers": {"Handler": {"profile": "fast", "blocking_timeout_ms": 250}},
    }
    resolved = resolve(
        handler_spec(
            subscription_profile="debug",
            subscription_config={"messages_per_tick": 3, "enable_dlq": None},
        ),
        domain_config,
    )
    assert resolved.messages_per_tick == 3
    assert resolved.sources["messages_per_tick"] == "handler subscription_config"
    assert resolved.enable_dlq is PROFILES["debug"]["enable_dlq"]  # None never overrides
    assert resolved.sources["enable_dlq"] == "handler subscription_profile (debug)"
    assert resolved.blocking_timeout_ms == PROFILES["debug"]["blocking_timeout_ms"]

    plain = resolve(handler_spec(), domain_config)
    assert plain.blocking_timeout_ms == 250
    assert plain.sources["blocking_timeout_ms"] == "domain handler section"
    assert plain.max_retries == PROFILES["fast"]["max_retries"]  # section profile beats domain
    assert plain.sources["position_update_interval"] == "domain handler section profile (fast)"

    bare = resolve(handler_spec(), {"subscription": {"profile": "batch", "max_retries": 7}})
    assert bare.max_retries == 7 and bare.sources["max_retries"] == "domain defaults"
    assert bare.messages_per_tick == 500
    assert bare.attempts == 8  # N retries = N + 1 attempts

    typed = resolve(handler_spec(subscription_type="stream"), {})
    assert typed.subscription_type == "stream"


@pytest.mark.parametrize(
    ("options", "config", "text"),
    [
        ({"subscription_profile": "turbo"}, {}, "Unknown subscription profile 'turbo'"),
        ({"subscription_type": "redis"}, {}, "Unknown subscription type 'redis'"),
        (
            {"subscription_config": {"batch_size": 1}},
            {},
            "Unknown subscription setting 'batch_size'",
        ),
        ({}, {"handlers": {"Handler": {"profile": "nope"}}}, "Unknown subscription profile 'nope'"),
        (
            {"subscription_config": {"messages_per_tick": 0}},
            {},
            "messages_per_tick must be a positive",
        ),
    ],
)
def test_configuration_errors(options: dict[str, Any], config: dict[str, Any], text: str) -> None:
    with pytest.raises(ConfigurationError, match=text):
        resolve(handler_spec(**options), config)
