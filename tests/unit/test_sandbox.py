"""The query front end: what it refuses (wherever it hides) and what it rewrites."""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from pgstore.sandbox import QueryRefused, rewrite

REFUSED = [
    ("DELETE FROM pgstore.messages", "DELETE"),
    ("insert into t values (1)", "INSERT"),
    ("UPDATE pgstore.aggregates SET data = '{}'", "UPDATE"),
    ("DROP TABLE pgstore.messages", "DROP"),
    ("CREATE TABLE x (a int)", "CREATE"),
    ("ALTER TABLE pgstore.messages ADD COLUMN x int", "ALTER"),
    ("TRUNCATE pgstore.messages", "TRUNCATE"),
    ("COPY pgstore.messages TO '/tmp/x'", "COPY"),
    ("select pg_notify('pgstore_messages', 'x')", "pg_notify"),
    ("SELECT SET_CONFIG('search_path', 'evil', false)", "set_config"),
    ("select pg_sleep(100)", "pg_sleep"),
    ("select dblink_exec('host=x', 'delete from t')", "dblink_exec"),
    ("select pg_advisory_lock(1)", "pg_advisory_lock"),
    ("select nextval('s')", "nextval"),
    ("select pgstore.append_messages('a-1', null, null, null)", "append_messages"),
    ("select pgmq.send('q', '{}')", "pgmq.send"),
    ("select write_message('x', 'a-1', 'T', '{}')", "write_message"),
    ("SELECT * FROM pgstore.messages FOR UPDATE", "FOR UPDATE"),
    ("select * into stolen from pgstore.messages", "INTO"),
    # hidden in CTEs, sub-queries, unions, and in mixed case
    ("WITH gone AS (DELETE FROM pgstore.messages RETURNING *) SELECT * FROM gone", "DELETE"),
    ("with x as (select 1) select * from x where 1 in (select PG_Notify('a', 'b'))", "pg_notify"),
    ("SELECT (SELECT pg_sleep(5)) AS nap", "pg_sleep"),
    ("select 1 union select pg_terminate_backend(1)", "pg_terminate_backend"),
    ("select * from (select lo_import('/etc/passwd')) s", "lo_import"),
    ("SeLeCt 1; DeLeTe FrOm pgstore.messages", "exactly one statement"),
    ("select 1; select 2", "exactly one statement"),
    ("EXPLAIN ANALYZE DELETE FROM pgstore.messages", "Only SELECT"),
    ("SELECT * FROM stream('order')", "stream name"),
    ("SELECT * FROM category('order-1')", "category like"),
    ("not sql at all (", "parse"),
]


@pytest.mark.parametrize(("query", "why"), REFUSED)
def test_refused(query: str, why: str) -> None:
    with pytest.raises(QueryRefused) as caught:
        rewrite(query)
    assert why.lower() in str(caught.value).lower()


def test_stream_and_category_become_pruned_subqueries() -> None:
    sql = rewrite("SELECT type FROM stream('order-1')")
    assert "FROM pgstore.events" in sql
    assert "category = 'order'" in sql and "stream_name = 'order-1'" in sql
    assert "ORDER BY position" in sql
    category_sql = rewrite("select * from category('order') c where c.type = 'X'")
    assert "category = 'order'" in category_sql and ") AS c" in category_sql


def test_json_fields() -> None:
    sql = rewrite("SELECT data.book_id, metadata.correlation_id FROM category('order')")
    assert "data ->> 'book_id' AS book_id" in sql
    assert "metadata ->> 'correlation_id' AS correlation_id" in sql
    nested = rewrite("SELECT 1 FROM category('order') o WHERE o.data.customer.name = 'ada'")
    assert "o.data -> 'customer' ->> 'name' = 'ada'" in nested
    # A real table called data keeps its meaning.
    assert "data.book_id" in rewrite("SELECT data.book_id FROM books AS data")


def test_partition_key_is_added_for_stream_filters() -> None:
    sql = rewrite("SELECT * FROM pgstore.events WHERE stream_name = 'bookstore::order-9'")
    assert "category = 'bookstore::order'" in sql
    untouched = rewrite("SELECT * FROM pgstore.events WHERE category = 'x' AND stream_name = 'y-1'")
    assert untouched.count("category") == 1


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_arbitrary_text_is_refused_or_a_single_select(text: str) -> None:
    """Whatever is typed, the result is a refusal or one SELECT that parses again."""
    try:
        sql = rewrite(text)
    except QueryRefused:
        return
    (again,) = sqlglot.parse(sql, read="postgres")
    assert again is not None and again.key in ("select", "union", "intersect", "except")


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["DELETE FROM t", "UPDATE t SET a = 1", "INSERT INTO t VALUES (1)"]),
    st.sampled_from(
        ["WITH x AS ({}) SELECT * FROM x", "SELECT * FROM t WHERE a IN (WITH x AS ({}) SELECT 1)"]
    ),
    st.booleans(),
)
def test_writes_are_found_however_they_are_nested(write: str, shape: str, upper: bool) -> None:
    query = shape.format(write + " RETURNING *")
    query = query.upper() if upper else query.lower()
    with pytest.raises(QueryRefused):
        rewrite(query)
