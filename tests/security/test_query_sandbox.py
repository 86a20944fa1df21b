"""`pgstore query` attacked: SQL-running functions, role climbing, huge results."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgstore import query_login
from pgstore.errors import InvalidArgument, NotConfined, QueryRefused
from pgstore.messages import NewMessage
from pgstore.sandbox import rewrite, run
from pgstore.store import EventStore

Conn = psycopg.Connection[Any]

# Each of these ran SQL text (or read files, or climbed roles) past the old blocklist.
ESCAPES = [
    "SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))')",
    "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT query_to_xml('SELECT rolpassword FROM pg_authid', true, true, '')",
    "SELECT query_to_xml_and_xmlschema('SELECT 1', true, true, '')",
    "SELECT cursor_to_xml('c', 1, true, true, '')",
    "SELECT xpath('/a', query_to_xml('SELECT 1', true, true, ''))",
    "SELECT database_to_xml(true, true, '')",
    "SELECT set_config('role', 'none', true)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_catalog.pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('/')",
    "SELECT pg_terminate_backend(1)",
    "SELECT current_setting('data_directory')",
    "SELECT pg_stat_file('/etc/passwd')",
    "SELECT pgmq.metrics_all()",
    "SELECT pgstore.create_queue('x.Y', 'x')",
    "SELECT pgstore.append_messages('a-1', NULL, NULL, NULL)",
    "SELECT * FROM public.anything()",
    "SELECT lo_get(1)",
    "SELECT dblink('host=x', 'SELECT 1')",
    "SELECT pg_advisory_lock(1)",
    "SELECT txid_current()",
    "SELECT convert_from(pg_read_binary_file('/etc/passwd'), 'UTF8')",
]

ALLOWED = [
    "SELECT lower(type), count(*), max(global_position) FROM pgstore.events GROUP BY 1",
    "SELECT data->>'n', (data->'a')->>'b', data @> '{\"n\": 1}', data ? 'n' FROM pgstore.events",
    "SELECT jsonb_path_query_first(data, '$.n'), jsonb_typeof(data) FROM pgstore.events",
    "SELECT extract(epoch FROM time), date_trunc('hour', time), now() - time FROM pgstore.events",
    "SELECT row_number() OVER (PARTITION BY stream_name ORDER BY position) FROM pgstore.events",
    "SELECT string_agg(stream_name, ',' ORDER BY stream_name) FROM pgstore.streams",
    "SELECT coalesce(metadata->>'x', 'none'), CASE WHEN position > 0 THEN 'later' END"
    " FROM pgstore.events",
    "SELECT * FROM pgstore.read_category('order', 0, 10)",
    "SELECT g FROM generate_series(1, 3) AS g",
    "SELECT substring(stream_name FROM 1 FOR 3), position('-' IN stream_name) FROM pgstore.events",
]


@pytest.mark.parametrize("query", ESCAPES)
def test_functions_off_the_allowlist_are_refused(query: str) -> None:
    with pytest.raises(QueryRefused):
        rewrite(query)


@pytest.mark.parametrize("query", ALLOWED)
def test_pure_functions_pass(query: str) -> None:
    rewrite(query)


FORBIDDEN_NAMES = st.sampled_from(
    [
        "ts_stat",
        "ts_rewrite",
        "query_to_xml",
        "table_to_xml",
        "pg_read_file",
        "set_config",
        "pg_sleep",
        "lo_import",
        "pg_notify",
        "dblink_exec",
        "pg_ls_dir",
        "current_setting",
        "pg_terminate_backend",
        "nextval",
    ]
)
WRAPPERS = st.sampled_from(
    [
        "SELECT {}",
        "SELECT lower({})",
        "SELECT 1 WHERE {} IS NOT NULL",
        "SELECT * FROM (SELECT {} AS x) s",
        "WITH w AS (SELECT {} AS x) SELECT * FROM w",
        "SELECT 1 UNION ALL SELECT {}",
        "SELECT CASE WHEN true THEN {} END",
        "SELECT coalesce(NULL, {})",
        "SELECT count(*) FILTER (WHERE {} IS NULL) FROM pgstore.events",
        "SELECT ({})::text",
        "SELECT ARRAY[{}]",
        "SELECT * FROM pgstore.events ORDER BY {}",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    name=FORBIDDEN_NAMES,
    wrapper=WRAPPERS,
    case=st.sampled_from([str.lower, str.upper, str.title]),
    qualified=st.booleans(),
)
def test_a_forbidden_function_is_refused_wherever_it_hides(
    name: str, wrapper: str, case: Any, qualified: bool
) -> None:
    call = ("pg_catalog." if qualified else "") + case(name) + "('x')"
    with pytest.raises(QueryRefused):
        rewrite(wrapper.format(call))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_is_refused_or_allowed_but_never_crashes(text: str) -> None:
    with contextlib.suppress(QueryRefused):
        rewrite(text)


def test_queries_run_as_the_confined_login_not_the_caller(conn: Conn, dsn: str) -> None:
    """With the usual superuser DSN, the query runs as pgstore_query, which holds only
    pgstore_reader: even if a function slipped past the allowlist, nothing climbs back."""
    with query_login.connect(dsn) as confined:
        _, result = run(confined, "SELECT session_user, current_user", limit=5)
        assert result.rows == [("pgstore_query", "pgstore_query")]
        # The same session, used directly as an attacker would after an escape:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            confined.execute("SELECT pg_read_file('/etc/passwd')")
        confined.execute("SELECT set_config('role', 'none', false)")
        assert confined.execute("SELECT current_user").fetchone() == ("pgstore_query",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            confined.execute("SET ROLE postgres")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            confined.execute("SELECT rolpassword FROM pg_authid")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            confined.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))


def test_a_privileged_connection_is_refused(conn: Conn) -> None:
    with pytest.raises(NotConfined, match="SUPERUSER"):
        run(conn, "SELECT 1", limit=1)


def test_query_dsn_must_be_confined(dsn: str, logins: dict[str, str]) -> None:
    with pytest.raises(NotConfined, match="pgstore_writer"):
        query_login.connect(dsn, query_conninfo=logins["writer"])
    with query_login.connect(dsn, query_conninfo=logins["reader"]) as reader:
        assert run(reader, "SELECT 1 AS one", limit=1)[1].rows == [(1,)]


def test_the_password_expires_and_changes(conn: Conn, dsn: str) -> None:
    with query_login.connect(dsn):
        pass
    (until,) = conn.execute(
        "SELECT rolvaliduntil - now() FROM pg_roles WHERE rolname = 'pgstore_query'"
    ).fetchone() or (None,)
    assert until is not None and 0 < until.total_seconds() <= 60


def test_row_cap_holds_for_every_shape(dsn: str, store: EventStore) -> None:
    store.append("order-1", [NewMessage("Placed", {"n": n}) for n in range(5)])
    with query_login.connect(dsn) as confined:
        for query in (
            "SELECT * FROM generate_series(1, 50)",
            "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3",
            "(SELECT 1) UNION ALL (SELECT g FROM generate_series(1, 9) g LIMIT 1000)",
            "SELECT * FROM pgstore.events LIMIT 1000",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
        ):
            _, result = run(confined, query, limit=2)
            assert len(result.rows) == 2 and result.truncated, query


def test_a_huge_row_is_refused_by_the_server(dsn: str) -> None:
    with (
        query_login.connect(dsn) as confined,
        pytest.raises(InvalidArgument, match="too large"),
    ):
        run(confined, "SELECT repeat('x', 20000000)", limit=1)


def test_timeout_must_be_positive(dsn: str) -> None:
    with query_login.connect(dsn) as confined:
        for timeout in (0, -1, 100_000):
            with pytest.raises(InvalidArgument):
                run(confined, "SELECT 1", limit=1, timeout_seconds=timeout)
        with pytest.raises(psycopg.errors.QueryCanceled):
            run(confined, "SELECT count(*) FROM generate_series(1, 1e9::bigint)", limit=1,
                timeout_seconds=0.2)  # fmt: skip


@pytest.mark.parametrize(
    "where",
    [
        "stream_name = 'order-1' OR type = 'Shipped'",
        "NOT (stream_name = 'order-1')",
        "stream_name = 'order-1' AND type = 'Placed'",
        "(stream_name = 'order-1' AND position > 0) OR stream_name = 'cart-1'",
        "type = 'Placed' AND (stream_name = 'order-1')",
    ],
)
def test_the_partition_rewrite_never_changes_answers(
    dsn: str, store: EventStore, conn: Conn, where: str
) -> None:
    store.append("order-1", [NewMessage("Placed", {}), NewMessage("Shipped", {})])
    store.append("order-2", [NewMessage("Placed", {}), NewMessage("Shipped", {})])
    store.append("cart-1", [NewMessage("Placed", {}), NewMessage("Shipped", {})])
    query = f"SELECT id FROM pgstore.events WHERE {where} ORDER BY id"  # noqa: S608
    expected = conn.execute(query.encode()).fetchall()
    with query_login.connect(dsn) as confined:
        _, result = run(confined, query, limit=100)
    assert [tuple(row) for row in result.rows] == [tuple(row) for row in expected]


def test_the_rewrite_adds_the_category_only_for_a_top_level_conjunct() -> None:
    assert "category = 'order'" in rewrite(
        "SELECT * FROM pgstore.events WHERE type = 'X' AND stream_name = 'order-1'"
    )
    for where in ("stream_name = 'order-1' OR type = 'X'", "NOT stream_name = 'order-1'"):
        assert "category" not in rewrite(f"SELECT * FROM pgstore.events WHERE {where}")  # noqa: S608
