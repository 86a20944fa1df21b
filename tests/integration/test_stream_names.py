"""Stream-name parsing, property-based: whatever the name, a clear refusal or a consistent parse."""

from __future__ import annotations

import unicodedata
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgstore.errors import InvalidName
from pgstore.messages import NewMessage, category
from pgstore.store import EventStore

names = st.one_of(
    st.text(min_size=0, max_size=40),
    st.text(alphabet="ab-+:.", min_size=0, max_size=12),
    st.builds(lambda c, i: f"{c}-{i}", st.text(max_size=10), st.text(max_size=10)),
)


def expected_valid(name: str) -> bool:
    head, dash, tail = name.partition("-")
    return (
        0 < len(name) <= 500
        and not any(unicodedata.category(ch) == "Cc" for ch in name)  # C0, DEL and C1
        and bool(dash)
        and bool(head)
        and bool(tail)
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names)
def test_append_accepts_exactly_the_valid_names(store: EventStore, name: str) -> None:
    if "\x00" in name:
        return  # refused by the driver itself (tested elsewhere)
    try:
        (appended,) = store.append(name, NewMessage("T", {}))
    except InvalidName as error:
        assert not expected_valid(name), f"refused a valid name {name!r}: {error}"
        assert "Invalid stream name" in str(error)
        return
    assert expected_valid(name), f"accepted an invalid name {name!r}"
    last = store.last_message(name)
    assert last is not None and last.category == category(name) and last.id == appended.id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(max_size=30).filter(lambda s: "\x00" not in s))
def test_sql_helpers_match_message_db_rules(conn: psycopg.Connection[Any], name: str) -> None:
    row = conn.execute(
        "SELECT pgstore.category(%(n)s), pgstore.id(%(n)s), pgstore.cardinal_id(%(n)s),"
        " pgstore.is_category(%(n)s)",
        {"n": name},
    ).fetchone()
    head, dash, tail = name.partition("-")
    identifier = tail if dash else None
    assert row == (
        head,
        identifier,
        None if identifier is None else identifier.split("+")[0],
        not dash,
    )
