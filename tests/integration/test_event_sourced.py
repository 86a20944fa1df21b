"""Event-sourced aggregates: rebuilt from their stream with @apply, guarded by stream version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgstore import AggregateRoot, Domain, Event, apply
from pgstore.errors import WrongExpectedVersion
from pgstore.repository import NotFound


@pytest.fixture
def bank(dsn: str) -> Iterator[Domain]:
    domain = Domain("bank", dsn=dsn)
    yield domain
    domain.close()


def test_event_sourced_aggregate(bank: Domain) -> None:
    @bank.aggregate(event_sourced=True, stream_category="account")
    class Account(AggregateRoot):
        owner: str = ""
        balance: int = 0

        @classmethod
        def open(cls, owner: str) -> Account:
            account = cls()
            account.raise_(Opened(owner=owner))
            return account

        def deposit(self, amount: int) -> None:
            self.raise_(Deposited(amount=amount))

        @apply("Opened")
        def opened(self, event: Opened) -> None:
            self.owner = event.owner

        @apply("Deposited")
        def deposited(self, event: Deposited) -> None:
            self.balance += event.amount

    @bank.event(part_of=Account)
    class Opened(Event):
        owner: str

    @bank.event(part_of=Account)
    class Deposited(Event):
        amount: int

    repository = bank.repository_for(Account)
    account = Account.open("ada")
    account.deposit(10)
    assert account.balance == 10  # raise_ applies at once
    repository.add(account)

    loaded = repository.get(account.id)
    assert (loaded.owner, loaded.balance, loaded._version) == ("ada", 10, 1)
    loaded.deposit(5)
    repository.add(loaded)
    assert repository.get(account.id).balance == 15

    stale = account  # still at version 1
    stale.deposit(1)
    with pytest.raises(WrongExpectedVersion):
        repository.add(stale)
    assert repository.get(account.id).balance == 15
    with pytest.raises(NotFound):
        repository.get("missing")
    assert [m.type for m in bank.store.read_stream(f"account-{account.id}")] == [
        "bank.Opened.v1",
        "bank.Deposited.v1",
        "bank.Deposited.v1",
    ]


def test_get_or_new(bank: Domain) -> None:
    @bank.aggregate
    class Counter(AggregateRoot):
        count: int = 0

    repository = bank.repository_for(Counter)
    fresh = repository.get_or_new("c-1")
    assert (fresh.id, fresh.count, fresh._version) == ("c-1", 0, -1)
    fresh.count = 5
    repository.add(fresh)
    stored = repository.get_or_new("c-1")
    assert (stored.count, stored._version) == (5, 0)
