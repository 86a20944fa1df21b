"""Domain: the registry of aggregates, events and event handlers, and its database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, overload

from pgstore import connection, subscriptions, unit_of_work
from pgstore.errors import ConfigurationError
from pgstore.handlers import HandlerSpec
from pgstore.messages import Message, category_problem
from pgstore.model import AggregateRoot, Event, EventRegistry, make_model, normalised_name
from pgstore.repository import Repository
from pgstore.store import EventStore

T = TypeVar("T")
A = TypeVar("A", bound=AggregateRoot)


class Domain:
    """A bounded context: declare its model with decorators, then dispatch its handlers.

    ``dsn``: where its database is; default as the CLI finds it (PGSTORE_DSN, libpq
    variables, else the embedded server). ``config``: subscription settings, see
    `pgstore.subscriptions`.
    """

    def __init__(
        self, name: str, *, dsn: str | None = None, config: dict[str, Any] | None = None
    ) -> None:
        self.name = name
        self.dsn = dsn
        self.config = config or {}
        self.aggregates: dict[str, type[AggregateRoot]] = {}
        self.events = EventRegistry(name)
        self.handlers: list[HandlerSpec] = []
        self._store: EventStore | None = None
        self._store_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Domain {self.name}>"

    # -- declarations -------------------------------------------------------------

    @overload
    def aggregate(self, cls: type[T]) -> type[T]: ...
    @overload
    def aggregate(
        self, *, stream_category: str | None = None, event_sourced: bool = False
    ) -> Callable[[type[T]], type[T]]: ...

    def aggregate(
        self,
        cls: type[T] | None = None,
        *,
        stream_category: str | None = None,
        event_sourced: bool = False,
    ) -> Any:
        """Declare an aggregate. Its stream category defaults to its class name in
        snake case (``OrderItem`` -> ``order_item``); streams are ``<category>-<id>``."""

        def declare(target: type[T]) -> type[T]:
            model = make_model(target, AggregateRoot, frozen=False, with_id=True)
            category = stream_category or normalised_name(target.__name__)
            problem = category_problem(category)
            if problem is not None:
                raise ConfigurationError(
                    f"Aggregate {target.__name__}: stream_category {category!r} {problem}"
                )
            model.__pgstore_category__ = category
            model.__pgstore_event_sourced__ = event_sourced
            model.__pgstore_appliers__ = {
                value.__pgstore_applies__: value
                for value in vars(model).values()
                if hasattr(value, "__pgstore_applies__")
            }
            self.aggregates[model.__name__] = model
            return model

        return declare(cls) if cls is not None else declare

    @overload
    def event(self, cls: type[T]) -> type[T]: ...
    @overload
    def event(
        self, *, part_of: type[AggregateRoot] | None = None, schema_version: int = 1
    ) -> Callable[[type[T]], type[T]]: ...

    def event(
        self,
        cls: type[T] | None = None,
        *,
        part_of: type[AggregateRoot] | None = None,
        schema_version: int = 1,
    ) -> Any:
        """Declare an event; its stored type is ``<domain>.<Event>.v<schema_version>``."""

        def declare(target: type[T]) -> type[T]:
            model = make_model(target, Event, frozen=True, with_id=False)
            model.__pgstore_type__ = f"{self.name}.{target.__name__}.v{schema_version}"
            model.__pgstore_part_of__ = part_of
            model.__pgstore_schema_version__ = schema_version
            self.events[model.__pgstore_type__] = model
            return model

        return declare(cls) if cls is not None else declare

    def event_handler(
        self,
        cls: type[T] | None = None,
        *,
        part_of: type[AggregateRoot] | None = None,
        stream_category: str | None = None,
        source_stream: str | None = None,
        subscription_type: str | None = None,
        subscription_profile: str | None = None,
        subscription_config: dict[str, Any] | None = None,
    ) -> Any:
        """Declare an event handler listening to `stream_category` (default: the
        category of `part_of`)."""

        def declare(target: type[T]) -> type[T]:
            category = stream_category or (part_of.__pgstore_category__ if part_of else None)
            if category is None:
                raise ConfigurationError(
                    f"Event handler {target.__name__}: give part_of or stream_category"
                )
            problem = category_problem(category)
            if problem is not None:
                raise ConfigurationError(
                    f"Event handler {target.__name__}: stream_category {category!r} {problem}"
                )
            spec = HandlerSpec.inspect(
                target,
                name=f"{self.name}.{target.__name__}",
                part_of=part_of,
                stream_category=category,
                source_stream=source_stream,
                subscription_type=subscription_type,
                subscription_profile=subscription_profile,
                subscription_config=dict(subscription_config or {}),
            )
            if any(existing.name == spec.name for existing in self.handlers):
                raise ConfigurationError(f"Event handler {spec.name} is declared twice")
            # The handler's own options fail here, naming it, not when a dispatcher
            # starts (the domain's configuration can still change until then).
            subscriptions.resolve(spec, {})
            self.handlers.append(spec)
            return target

        return declare(cls) if cls is not None else declare

    # -- persistence --------------------------------------------------------------

    def repository_for(self, aggregate: type[A]) -> Repository[A]:
        if aggregate.__name__ not in self.aggregates:
            raise LookupError(f"{aggregate.__name__} is not an aggregate of {self.name}")
        return Repository(aggregate, lambda: self.store, self.events)

    @property
    def store(self) -> EventStore:
        """The domain's event store, connected on first use."""
        with self._store_lock:
            if self._store is None:
                self._store = EventStore.connect(connection.resolve(self.dsn).conninfo)
            return self._store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @contextmanager
    def unit_of_work(self) -> Iterator[unit_of_work.UnitOfWork]:
        """One transaction that every repository call in the block joins."""
        with unit_of_work.opened(self.store) as unit:
            yield unit

    def event_from_message(self, message: Message) -> Event:
        """Deserialise a stored message into this domain's event class."""
        return self.events.event(message)
