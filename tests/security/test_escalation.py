"""A dispatcher credential (the one most likely to leak) trying to become more."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgstore import AggregateRoot, Domain, handle
from pgstore.dispatch import Dispatcher
from pgstore.dispatch.stream import queue_names
from pgstore.messages import NewMessage
from pgstore.migrate import create_roles
from pgstore.status import collect
from pgstore.store import EventStore
from tests.security.conftest import refused

Conn = psycopg.Connection[Any]

# Run as a superuser, this makes whoever runs it... the caller's name superuser.
TRAP = """
CREATE FUNCTION {schema}.trap() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('ALTER ROLE %I SUPERUSER', '{victim}');
  END IF;
  RETURN 0;
END $$
"""


def is_superuser(conn: Conn, login: str) -> bool:
    user = psycopg.conninfo.conninfo_to_dict(login)["user"]
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    return bool(row and row[0])


def test_the_dispatcher_cannot_create_what_others_run(logins: dict[str, str]) -> None:
    dispatcher = logins["dispatcher"]
    assert refused(dispatcher, "CREATE VIEW pgmq.q_evil AS SELECT 1 AS msg_id")
    assert refused(dispatcher, "CREATE TABLE pgmq.q_evil (msg_id bigint)")
    assert refused(
        dispatcher, "CREATE FUNCTION pgstore.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    )
    assert refused(
        dispatcher,
        "INSERT INTO pgstore.stream_subscriptions (handler, category, queue, dead_letter_queue)"
        " VALUES ('x.Evil', 'x', 'evil', 'evil_dlq')",
    )
    assert refused(dispatcher, "INSERT INTO pgmq.meta (queue_name) VALUES ('evil')")


def test_a_planted_queue_never_runs_as_the_operator(
    conn: Conn, logins: dict[str, str], dsn: str
) -> None:
    """The attack of the issue, with the old grants restored for one login: a view in
    pgmq over a trap function, registered as a subscription. An operator's `pgstore
    status` (a superuser) then reads it; the view must not be read."""
    attacker = logins["dispatcher"]
    user = psycopg.conninfo.conninfo_to_dict(attacker)["user"]
    conn.execute(f'GRANT CREATE ON SCHEMA pgmq TO "{user}"')
    conn.execute(f'GRANT INSERT ON pgstore.stream_subscriptions TO "{user}"')
    with psycopg.connect(attacker, autocommit=True) as evil:
        evil.execute(TRAP.format(schema="pgmq", victim=user))
        evil.execute(
            "CREATE VIEW pgmq.q_evil AS SELECT pgmq.trap() AS msg_id, now() AS enqueued_at"
        )
        evil.execute(
            "INSERT INTO pgstore.stream_subscriptions (handler, category, queue,"
            " dead_letter_queue) VALUES ('x.Evil', 'x', 'evil', 'evil')"
        )
        evil.execute(
            "INSERT INTO pgstore.handler_positions (handler, category) VALUES ('x.Evil', 'x')"
        )
    collect(conn)  # `pgstore status`
    conn.execute("SELECT * FROM pgstore.handlers").fetchall()
    conn.execute("SELECT * FROM pgstore.queue_depth('evil')").fetchall()
    assert not is_superuser(conn, attacker)
    row = conn.execute("SELECT pgstore.queue_table('evil')").fetchone()
    assert row == (None,)


def test_queues_work_whatever_the_order_of_roles_and_queues(
    conn: Conn, logins: dict[str, str], store: EventStore, dsn: str
) -> None:
    """Queues created by the owner after `migrate --roles` were unreadable to the
    reader and unusable by the dispatcher ("must be owner of table q_...")."""
    seen: list[str] = []

    def late_domain(conninfo: str) -> Domain:
        domain = Domain("late", dsn=conninfo)

        @domain.aggregate
        class Thing(AggregateRoot):
            pass

        @domain.event_handler(stream_category="late", subscription_type="stream")
        class Late:
            @handle("$any")
            def any(self, event: Any) -> None:
                seen.append(event.type)

        return domain

    owner = late_domain(dsn)
    Dispatcher(owner, once=True).run()  # the owner creates the queues, after the roles
    owner.close()
    store.append("late-1", [NewMessage("A", {}), NewMessage("B", {})])
    dispatcher = late_domain(logins["dispatcher"])
    Dispatcher(dispatcher, once=True).run()
    dispatcher.close()
    assert seen == ["A", "B"]
    with psycopg.connect(logins["reader"]) as reader:
        rows = reader.execute(
            "SELECT handler, queue_depth, dead_letters FROM pgstore.handlers"
        ).fetchall()
        assert rows == [("late.Late", 0, 0)]
        queue, _ = queue_names("late.Late")
        reader.execute(f"SELECT count(*) FROM pgmq.q_{queue}")  # noqa: S608


def test_queue_names_agree_in_python_and_sql(conn: Conn) -> None:
    for handler in ("bookstore.ManageInventory", "a.B_c-D", "x." + "Long" * 20, "ü.Ärger", "k.K"):
        row = conn.execute("SELECT * FROM pgstore.queue_names(%s)", (handler,)).fetchone()
        assert row == queue_names(handler), handler


@pytest.mark.parametrize("handler", ["", "a" * 501, "bad\nname"])
def test_create_queue_refuses_bad_handler_names(conn: Conn, handler: str) -> None:
    with pytest.raises(psycopg.Error, match="Invalid handler name"):
        conn.execute("SELECT pgstore.create_queue(%s, 'x')", (handler,))


def test_every_security_definer_function_is_reviewed(conn: Conn) -> None:
    """Functions that run as their owner: each is on this list on purpose, fixes its
    search_path, and is executable only by the roles that need it."""
    create_roles(conn)
    rows = conn.execute(
        "SELECT p.oid::regproc::text, p.proconfig,"
        " has_function_privilege('pgstore_reader', p.oid, 'EXECUTE'),"
        " has_function_privilege('public', p.oid, 'EXECUTE')"
        " FROM pg_proc p WHERE p.prosecdef"
        " AND p.pronamespace IN ('pgstore'::regnamespace, 'message_store'::regnamespace)"
        " ORDER BY 1"
    ).fetchall()
    assert [row[0] for row in rows] == ["pgstore.append_messages", "pgstore.create_queue"]
    for name, config, reader, public in rows:
        assert config and any(c.startswith("search_path=pg_catalog") for c in config), name
        assert not reader and not public, name
