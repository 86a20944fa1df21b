"""pgstore.fields and the Domain as Protean spells them, without a database."""

from __future__ import annotations

import datetime
import enum
import logging
import uuid
from typing import Any

import pytest

from pgstore import AggregateRoot, Domain, current_domain, handle
from pgstore.errors import ConfigurationError, ValidationError
from pgstore.fields import (
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
from pgstore.subscriptions import resolve


def test_fields_coerce_as_protean_does() -> None:
    domain = Domain("coerce")

    @domain.aggregate
    class Book:
        isbn: Identifier(required=True)
        copies = Integer(min_value=0, default=0)
        price: Float()
        title: String(max_length=5)
        blurb = Text()
        in_print = Boolean(default=True)
        published = Date()
        updated: DateTime()
        tags = List(content_type=String)
        extra = Dict()
        serial = Auto()

    book = Book(
        isbn=uuid.UUID(int=1), copies="10", price=3, title=12, published="2026-12-04",
        updated="2026-12-04T10:00:00+00:00", tags=("a", 1),
    )  # fmt: skip
    assert book.isbn == str(uuid.UUID(int=1)) and book.copies == 10 and book.price == 3.0
    assert book.title == "12" and book.in_print is True and book.extra == {}
    assert book.published == datetime.date(2026, 12, 4)
    assert book.tags == ["a", "1"] and isinstance(book.serial, str)
    stored = book.to_dict()
    assert stored["published"] == "2026-12-04" and list(stored)[-1] == "id"
    assert Book.from_dict(stored) == book  # JSON round trip


def test_values_are_checked_on_construction_and_on_every_assignment() -> None:
    domain = Domain("checked")

    class Colour(enum.Enum):
        RED = "red"

    @domain.aggregate
    class Inventory:
        book_id: Identifier(required=True)
        in_stock: Integer(required=True, max_value=1000)
        colour = String(choices=Colour, default="red")
        note: str = ""  # a plain annotation beside the fields

    with pytest.raises(ValidationError) as problems:
        Inventory(in_stock="ten")
    assert set(problems.value.problems) == {"book_id", "in_stock"}
    inventory = Inventory(book_id=1, in_stock=100)
    for field, value in (("in_stock", "ten"), ("in_stock", 1001), ("in_stock", None),
                         ("colour", "blue"), ("note", 5)):  # fmt: skip
        with pytest.raises(ValidationError, match=field):
            setattr(inventory, field, value)
    inventory.in_stock = "90"
    assert inventory.in_stock == 90 and inventory.book_id == "1"


def test_an_identifier_field_is_the_id() -> None:
    domain = Domain("ids")

    @domain.aggregate
    class Product:
        product_id = Identifier(identifier=True)
        name = String()

    product = Product(name="pen")
    assert product.id == product.product_id and product.stream_name.endswith(product.id)
    assert Product(product_id="p-1").id == "p-1"


def test_the_domain_as_protean_spells_it(tmp_path: Any) -> None:
    assert Domain().name == "test_fields"  # named after its module
    assert Domain(__file__).name == "test_fields"
    assert Domain(__file__, "Sales").name == "Sales"
    assert Domain(name="Sales").name == "Sales"
    assert Domain("bookstore").name == "bookstore"
    package = tmp_path / "shop" / "__init__.py"
    package.parent.mkdir()
    package.write_text("")
    assert Domain(str(package)).name == "shop"
    with pytest.raises(ConfigurationError, match="No current domain"):
        current_domain.name  # noqa: B018
    domain = Domain(name="Ctx")
    with domain.domain_context():
        assert current_domain.name == "Ctx"


def test_part_of_by_name_is_resolved_at_init() -> None:
    domain = Domain(name="Late")

    @domain.event(part_of="Order")
    class Placed:
        order_id = Identifier()

    @domain.event_handler(part_of="Order")
    class Follow:
        @handle("Placed")
        def placed(self, event: Any) -> None: ...

    @domain.aggregate
    class Order:
        pass

    domain.init(traverse=False)
    assert Placed.__pgstore_part_of__ is Order
    (spec,) = domain.handlers
    assert spec.stream_category == "order"
    assert spec.methods_for("Late.Placed.v1") == ["placed"]


def test_any_is_a_fallback_and_the_last_one_wins() -> None:
    domain = Domain(name="Fallback")

    @domain.aggregate
    class Thing(AggregateRoot):
        pass

    @domain.event(part_of=Thing)
    class Happened:
        pass

    @domain.event_handler(part_of=Thing)
    class Both:
        @handle(Happened)
        def specific(self, event: Any) -> None: ...

        @handle("$any")
        def first_any(self, event: Any) -> None: ...

        @handle("$any")
        def last_any(self, event: Any) -> None: ...

    (spec,) = domain.handlers
    assert spec.methods_for("Fallback.Happened.v1") == ["specific"]
    assert spec.methods_for("other.Thing.v1") == ["last_any"]


def test_protean_configuration_keys(caplog: pytest.LogCaptureFixture) -> None:
    domain = Domain(name="Configured")
    domain.config["server"] = {
        "default_subscription_type": "stream",
        "default_subscription_profile": "FAST",  # profile names are case-insensitive
        "messages_per_tick": 7,
        "subscriptions": {"Special": {"profile": "Batch"}},
    }
    domain.config["databases"] = {"default": {"provider": "postgresql"}}
    domain.config["no_such_key"] = 1

    @domain.aggregate
    class Thing(AggregateRoot):
        pass

    @domain.event_handler(part_of=Thing)
    class Plain:
        @handle("$any")
        def any(self, event: Any) -> None: ...

    @domain.event_handler(
        part_of=Thing, subscription_profile="projection", subscription_type="stream"
    )
    class Special:
        @handle("$any")
        def any(self, event: Any) -> None: ...

    plain, special = (resolve(spec, domain.config) for spec in domain.handlers)
    assert (plain.subscription_type, plain.messages_per_tick, plain.max_retries) == ("stream", 7, 2)
    # The handler's own profile and type beat the server's; its explicit type beats
    # its profile's (projection is event_store).
    assert (special.subscription_type, special.messages_per_tick) == ("stream", 100)
    with caplog.at_level(logging.WARNING):
        domain.init()
        domain.init()  # once only
    assert caplog.text.count("'databases' has no effect") == 1
    assert caplog.text.count("'no_such_key' is not a setting pgstore knows") == 1


def test_a_handler_of_a_category_no_event_uses_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    domain = Domain(name="Typo")

    @domain.aggregate
    class Order(AggregateRoot):
        pass

    @domain.event(part_of=Order)
    class Placed:
        pass

    @domain.event_handler(stream_category="ordr")
    class Misspelt:
        @handle(Placed)
        def placed(self, event: Any) -> None: ...

    with caplog.at_level(logging.WARNING):
        domain.init()
    assert "Typo.Misspelt listens to category 'ordr'" in caplog.text
