"""Domain: the registry of aggregates, events, commands and their handlers, and its database."""

from __future__ import annotations

import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pgstore import commands, connection, subscriptions, unit_of_work
from pgstore.config import DomainConfig
from pgstore.errors import ConfigurationError
from pgstore.handlers import HandlerSpec
from pgstore.messages import Message, category_problem
from pgstore.model import (
    AggregateRoot,
    Command,
    Event,
    EventRegistry,
    make_model,
    normalised_name,
)
from pgstore.repository import Repository
from pgstore.store import EventStore

T = TypeVar("T")
A = TypeVar("A", bound=AggregateRoot)

InlineRunner = Callable[["Domain", list[tuple[str, int]]], None]

_active: ContextVar[Domain | None] = ContextVar("pgstore_domain", default=None)


class Domain:
    """A bounded context: declare its model with decorators, then dispatch its handlers.

    Spelled as Protean spells it: ``Domain()``, ``Domain(__file__)``,
    ``Domain(__file__, "name")``, ``Domain(name="...")``; and as pgstore always has,
    ``Domain("name")`` (a first argument that is not a path is the name). Without a
    name, the domain is named after its file. ``dsn``: where its database is (default:
    as the CLI finds it). ``config``: see `pgstore.config.DomainConfig`.
    """

    # Set by pgstore.dispatch.inline when pgstore is imported: runs handlers in the
    # writer's process when config["event_processing"] is "sync" (the dispatch layer
    # sits below this one, so it plugs itself in rather than being imported here).
    inline: InlineRunner | None = None

    def __init__(
        self,
        root_path: str | None = None,
        name: str | None = None,
        *,
        dsn: str | None = None,
        config: dict[str, Any] | None = None,
        load_toml: bool = True,
    ) -> None:
        self.root_path, self.name = _root_and_name(root_path, name)
        self.dsn = dsn
        self.config = DomainConfig(config or {})
        self.load_toml = load_toml  # accepted for Protean's spelling; pgstore reads no TOML
        self.aggregates: dict[str, type[AggregateRoot]] = {}
        self.events = EventRegistry(self.name)
        self.handlers: list[HandlerSpec] = []
        self._store: EventStore | None = None
        self._store_lock = threading.Lock()
        self._initialised = False

    def __repr__(self) -> str:
        return f"<Domain {self.name}>"

    # -- declarations -------------------------------------------------------------

    def aggregate(
        self,
        cls: type[T] | None = None,
        *,
        stream_category: str | None = None,
        event_sourced: bool = False,
        is_event_sourced: bool = False,
    ) -> Any:
        """Declare an aggregate. Its stream category defaults to its class name in
        snake case (``OrderItem`` -> ``order_item``); streams are ``<category>-<id>``."""

        def declare(target: type[T]) -> type[T]:
            model = make_model(target, AggregateRoot, frozen=False, with_id=True)
            category = stream_category or normalised_name(target.__name__)
            _check_category(f"Aggregate {target.__name__}", category)
            model.__pgstore_category__ = category
            model.__pgstore_event_sourced__ = event_sourced or is_event_sourced
            model.__pgstore_domain__ = self.name
            model.__pgstore_appliers__ = {
                value.__pgstore_applies__: value
                for value in vars(model).values()
                if hasattr(value, "__pgstore_applies__")
            }
            self.aggregates[model.__name__] = model
            return model

        return declare(cls) if cls is not None else declare

    def event(
        self,
        cls: type[T] | None = None,
        *,
        part_of: type[AggregateRoot] | str | None = None,
        schema_version: int = 1,
    ) -> Any:
        """Declare an event; its stored type is ``<domain>.<Event>.v<schema_version>``.
        `part_of` may name the aggregate ("Order"), resolved when the domain is
        initialised."""
        return self._message_class(cls, Event, part_of, schema_version)

    def command(
        self,
        cls: type[T] | None = None,
        *,
        part_of: type[AggregateRoot] | str | None = None,
        schema_version: int = 1,
    ) -> Any:
        """Declare a command: ``domain.process(command)`` has its handler run it."""
        return self._message_class(cls, Command, part_of, schema_version)

    def _message_class(
        self,
        cls: type[T] | None,
        base: type[Event],
        part_of: type[AggregateRoot] | str | None,
        schema_version: int,
    ) -> Any:
        def declare(target: type[T]) -> type[T]:
            model = make_model(target, base, frozen=True, with_id=False)
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
        part_of: type[AggregateRoot] | str | None = None,
        stream_category: str | None = None,
        source_stream: str | None = None,
        subscription_type: str | None = None,
        subscription_profile: str | None = None,
        subscription_config: dict[str, Any] | None = None,
        retries: int = 0,
        backoff: str = "exponential",
    ) -> Any:
        """Declare an event handler listening to `stream_category` (default: the
        category of `part_of`). `retries`: how often a ConnectionError or TimeoutError
        it raises is tried again at once (with `backoff`) before it counts as a failure."""

        def declare(target: type[T]) -> type[T]:
            self._declare_handler(
                target,
                kind="event",
                part_of=part_of,
                stream_category=stream_category,
                source_stream=source_stream,
                subscription_type=subscription_type,
                subscription_profile=subscription_profile,
                subscription_config=dict(subscription_config or {}),
                retries=retries,
                backoff=backoff,
            )
            return target

        return declare(cls) if cls is not None else declare

    def command_handler(
        self,
        cls: type[T] | None = None,
        *,
        part_of: type[AggregateRoot] | str | None = None,
        stream_category: str | None = None,
        subscription_profile: str | None = None,
        subscription_config: dict[str, Any] | None = None,
    ) -> Any:
        """Declare a command handler of `part_of`'s commands. Run at once by
        ``domain.process`` (sync), or by ``pgstore dispatch`` from the aggregate's
        command stream (``<category>:command-<id>``), exactly once."""

        def declare(target: type[T]) -> type[T]:
            self._declare_handler(
                target,
                kind="command",
                part_of=part_of,
                stream_category=stream_category,
                source_stream=None,
                subscription_type=subscriptions.EVENT_STORE,
                subscription_profile=subscription_profile,
                subscription_config=dict(subscription_config or {}),
                retries=0,
                backoff="exponential",
            )
            return target

        return declare(cls) if cls is not None else declare

    def _declare_handler(self, target: type[Any], **options: Any) -> None:
        spec = HandlerSpec.inspect(target, name=f"{self.name}.{target.__name__}", **options)
        if any(existing.name == spec.name for existing in self.handlers):
            raise ConfigurationError(f"Event handler {spec.name} is declared twice")
        if spec.stream_category is None and not isinstance(spec.part_of, str):
            spec.stream_category = self._category_of(spec)
        if spec.stream_category is not None:
            _check_category(
                f"{options['kind'].title()} handler {target.__name__}", spec.stream_category
            )
        # The handler's own options fail here, naming it, not when a dispatcher
        # starts (the domain's configuration can still change until then).
        subscriptions.resolve(spec, {})
        self.handlers.append(spec)
        self._initialised = False

    def _category_of(self, spec: HandlerSpec) -> str:
        aggregate = self._aggregate(spec.part_of, f"handler {spec.name}")
        if aggregate is None:
            raise ConfigurationError(
                f"Event handler {spec.cls.__name__}: give part_of or stream_category"
            )
        category = aggregate.__pgstore_category__
        return f"{category}:command" if spec.kind == "command" else category

    def _aggregate(self, part_of: Any, what: str) -> type[AggregateRoot] | None:
        if part_of is None or not isinstance(part_of, str):
            return part_of
        found = self.aggregates.get(part_of)
        if found is None:
            raise ConfigurationError(
                f"{what}: part_of={part_of!r} names no aggregate of domain {self.name} "
                f"(known: {', '.join(sorted(self.aggregates)) or 'none'})"
            )
        return found

    # -- initialisation and context -----------------------------------------------

    def init(self, traverse: bool = True) -> None:
        """Resolve what was named by string (``part_of="Order"``, ``@handle("Shipped")``),
        check the handlers against the declared events (warning about a category that
        no event uses), and warn once about configuration keys pgstore does not know.
        `traverse` is accepted for Protean's spelling: pgstore's decorators register
        everything when the module is imported."""
        del traverse
        for event_class in self.events.values():
            part_of = event_class.__pgstore_part_of__
            if isinstance(part_of, str):
                event_class.__pgstore_part_of__ = self._aggregate(
                    part_of, f"{event_class.__name__}"
                )
        for spec in self.handlers:
            if spec.stream_category is None:
                spec.stream_category = self._category_of(spec)
                _check_category(f"Handler {spec.cls.__name__}", spec.stream_category)
            spec.resolve_names(self.events)
        self.config.warn_unknown()
        commands.warn_about_idle_handlers(self)
        self._initialised = True

    def ensure_initialised(self) -> None:
        if not self._initialised:
            self.init()

    @contextmanager
    def domain_context(self) -> Iterator[Domain]:
        """Make this domain ``pgstore.current_domain`` inside the block (initialising it
        if needed)."""
        self.ensure_initialised()
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    # -- persistence and processing ---------------------------------------------

    def repository_for(self, aggregate: type[A]) -> Repository[A]:
        if self.aggregates.get(aggregate.__name__) is not aggregate:
            raise LookupError(f"{aggregate.__name__} is not an aggregate of {self.name}")
        self.ensure_initialised()
        return Repository(
            aggregate, lambda: self.store, self.events, domain=self.name, appended=self._appended
        )

    def process(
        self,
        command: Command,
        asynchronous: bool | None = None,
        *,
        idempotency_key: str | None = None,
        raise_on_duplicate: bool = False,
    ) -> Any:
        """Run a command: at once, returning its handler's result (sync; the default
        when config["command_processing"] is "sync"), or by appending it to its
        aggregate's command stream for `pgstore dispatch` (returning its global
        position). A command given an `idempotency_key` runs once per key: a repeat
        returns the first result, or raises DuplicateCommandError with
        `raise_on_duplicate`."""
        self.ensure_initialised()
        if asynchronous is None:
            asynchronous = self.config.get("command_processing", "async") != "sync"
        return commands.process(self, command, asynchronous, idempotency_key, raise_on_duplicate)

    def _appended(self, appended: list[tuple[str, int]]) -> None:
        """After a repository's commit: with event_processing "sync", run the handlers
        of what it appended now, moving their positions as `pgstore dispatch` would."""
        if self.config.get("event_processing", "async") == "sync" and Domain.inline:
            Domain.inline(self, appended)

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


class _CurrentDomain:
    """``pgstore.current_domain``: the domain of the running handler, or of the
    innermost ``domain.domain_context()`` block."""

    def _get(self) -> Domain:
        domain = _active.get()
        if domain is None:
            raise ConfigurationError(
                "No current domain: use `with domain.domain_context():` (handlers run "
                "by pgstore dispatch have one)"
            )
        return domain

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __repr__(self) -> str:
        domain = _active.get()
        return f"<current_domain: {domain!r}>"


current_domain: Any = _CurrentDomain()


@contextmanager
def activated(domain: Domain) -> Iterator[None]:
    """`domain` as current_domain inside the block (the dispatcher's handlers)."""
    token = _active.set(domain)
    try:
        yield
    finally:
        _active.reset(token)


def _check_category(what: str, category: str) -> None:
    problem = category_problem(category)
    if problem is not None:
        raise ConfigurationError(f"{what}: stream_category {category!r} {problem}")


def _root_and_name(root_path: str | None, name: str | None) -> tuple[Path | None, str]:
    """Protean's `Domain(__file__, "name")` and pgstore's `Domain("name")` both work: a
    first argument that is a path to a file or directory is the root."""
    looks_like_path = root_path is not None and (
        root_path.endswith(".py") or os.sep in root_path or Path(root_path).exists()
    )
    if root_path is not None and not looks_like_path:
        if name is not None:
            raise ConfigurationError(f"Domain({root_path!r}, {name!r}): which is the name?")
        return None, root_path
    root = Path(root_path).resolve() if root_path else None
    if name:
        return root, name
    if root is not None:
        return root, (root.parent.name if root.stem == "__init__" else root.stem)
    return None, _caller_module_name()


def _caller_module_name() -> str:
    """The module that called Domain(): its last name, or its file's for __main__."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__", "").startswith("pgstore."):
        frame = frame.f_back
    module = frame.f_globals.get("__name__", "domain") if frame else "domain"
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        return Path(main_file).stem if main_file else "main"
    return str(module).rsplit(".", 1)[-1]
