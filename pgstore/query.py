"""`pgstore query`: one read-only SELECT, checked and rewritten by sqlglot, run read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from pgstore.errors import PgstoreError
from pgstore.messages import category as category_of


class QueryRefused(PgstoreError, ValueError):
    """The query is not a single read-only SELECT."""


# Functions with effects (or that wait, or reach outside the database). The READ
# ONLY transaction and the statement timeout stop most of them anyway; the parser
# refuses them first, with a message that says what was refused.
_REFUSED_FUNCTIONS = {
    "pg_notify",
    "set_config",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_file_write",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "pg_switch_wal",
    "pg_promote",
    "pg_log_backend_memory_contexts",
    "query_to_xml",
    "table_to_xml",
    "append_messages",
    "write_message",
    "lo_import",
    "lo_export",
}
_REFUSED_PREFIXES = (
    "dblink",
    "pg_advisory",
    "pg_try_advisory",
    "lo_",
    "pg_create_",
    "pg_drop_",
    "pg_logical_",
    "pg_replication_",
    "pg_stat_reset",
    "pg_backup",
    "pg_import_",
)
# Schema-qualified functions are refused unless they are pgstore's own reads.
_ALLOWED_QUALIFIED = {
    "pgstore": {
        "read_stream",
        "read_category",
        "read_all",
        "last_message",
        "stream_version",
        "category",
        "id",
        "cardinal_id",
        "is_category",
        "hash_64",
        "global_position_horizon",
    },
    "pg_catalog": None,  # any: pg_catalog's own functions are checked by name above
}
_STATEMENTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
_JSON_COLUMNS = ("data", "metadata")
_SOURCE_VIEW = "pgstore.events"


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def rewrite(text: str, *, limit: int | None = None) -> str:
    """Check `text` and return the PostgreSQL to run.

    Refuses (QueryRefused) anything but one SELECT without side effects. Rewrites the
    conveniences: ``stream('order-1')`` and ``category('order')`` in FROM, ``data.x``
    and ``metadata.x`` for JSON fields, and a ``category = ...`` predicate wherever a
    query on pgstore.events names a stream, so the read prunes to one partition.
    """
    try:
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except ParseError as error:
        description = error.errors[0]["description"] if error.errors else str(error)
        raise QueryRefused(f"Could not parse the query: {description}") from error
    except SqlglotError as error:  # the tokenizer's errors, e.g. an unclosed quote
        raise QueryRefused(f"Could not parse the query: {error}") from error
    if len(statements) != 1:
        raise QueryRefused(f"Give exactly one statement, not {len(statements)}")
    tree: Any = statements[0]
    _refuse_effects(tree)
    tree = tree.transform(_table_functions)
    tree = tree.transform(_json_fields)
    for select in tree.find_all(exp.Select):
        _add_partition_key(select)
    if limit is not None and isinstance(tree, exp.Select) and tree.args.get("limit") is None:
        tree = tree.limit(limit)
    return str(tree.sql(dialect="postgres"))


def _refuse_effects(tree: exp.Expression) -> None:
    if not isinstance(tree, _STATEMENTS):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise QueryRefused(f"Only SELECT queries are allowed, not {kind}")
    for node in tree.walk():
        if isinstance(
            node,
            exp.Insert
            | exp.Update
            | exp.Delete
            | exp.Merge
            | exp.Create
            | exp.Drop
            | exp.Alter
            | exp.Copy
            | exp.Command
            | exp.TruncateTable,
        ):
            raise QueryRefused(
                f"Only reads are allowed: refused {node.key.upper()} (in {tree.key.upper()})"
            )
        if isinstance(node, exp.Lock):
            raise QueryRefused("Refused FOR UPDATE/SHARE: queries here never lock rows")
        if isinstance(node, exp.Into):
            raise QueryRefused("Refused SELECT ... INTO: it creates a table")
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            schema = (
                node.this.name.lower() if isinstance(node.this, exp.Identifier | exp.Column) else ""
            )
            name = _function_name(node.expression)
            allowed = _ALLOWED_QUALIFIED.get(schema, set())
            if allowed is not None and name not in allowed:
                raise QueryRefused(
                    f"Refused function {schema}.{name}(): only pgstore's read functions"
                )
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_PREFIXES):
                raise QueryRefused(f"Refused function {name}(): it has effects beyond reading")


def _function_name(node: exp.Func) -> str:
    name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
    return str(name).lower()


def _table_functions(node: exp.Expression) -> exp.Expression:
    """FROM stream('order-1') / category('order') -> a filtered subquery on pgstore.events."""
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Anonymous):
        return node
    function = node.this
    name = str(function.name).lower()
    if name not in ("stream", "category"):
        return node
    arguments = function.expressions
    if (
        len(arguments) != 1
        or not isinstance(arguments[0], exp.Literal)
        or not arguments[0].is_string
    ):
        example = "stream('order-1')" if name == "stream" else "category('order')"
        raise QueryRefused(f"{name}() takes one quoted name, e.g. {example}")
    value = str(arguments[0].this)
    if name == "stream" and "-" not in value:
        raise QueryRefused(
            f"stream() needs a stream name like 'order-1', not the category {value!r}"
        )
    if name == "category" and "-" in value:
        raise QueryRefused(f"category() needs a category like 'order', not the stream {value!r}")
    condition: Any = exp.EQ(
        this=exp.column("category"), expression=exp.Literal.string(category_of(value))
    )
    if name == "stream":
        condition = exp.and_(
            condition, exp.EQ(this=exp.column("stream_name"), expression=exp.Literal.string(value))
        )
    order = "position" if name == "stream" else "global_position"
    subquery = exp.select("*").from_(_SOURCE_VIEW).where(condition).order_by(order)
    alias = node.alias or name
    return subquery.subquery(alias)


def _json_fields(node: exp.Expression) -> Any:
    """data.book_id -> data->>'book_id' (also c.data.book_id, metadata.x, data.a.b)."""
    if not isinstance(node, exp.Column):
        return node
    parts = [
        part.name
        for part in (node.args.get("catalog"), node.args.get("db"), node.args.get("table"))
        if part is not None
    ]
    select = node.find_ancestor(exp.Select)
    tables = select.find_all(exp.Table, exp.Subquery) if select else iter(())
    aliases = {source.alias_or_name.lower() for source in tables}
    found = [
        i
        for i, part in enumerate(parts)
        if part.lower() in _JSON_COLUMNS and part.lower() not in aliases
    ]
    if not found:
        return node
    index = found[0]
    qualifier = parts[:index]
    path: exp.Expression = exp.column(parts[index], table=qualifier[-1] if qualifier else None)
    for key in parts[index + 1 :]:
        path = exp.JSONExtract(this=path, expression=exp.Literal.string(key))
    extracted = exp.JSONExtractScalar(this=path, expression=exp.Literal.string(node.name))
    if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
        return exp.alias_(extracted, node.name)  # keep the field's name as the column's
    return extracted


def _add_partition_key(select: exp.Select) -> None:
    """Add category = '<c>' where a query on pgstore.events fixes stream_name = '<c>-...'."""
    sources = [t for t in select.find_all(exp.Table) if t.find_ancestor(exp.Select) is select]
    if not any(f"{t.db}.{t.name}".lower() in (_SOURCE_VIEW, "pgstore.messages") for t in sources):
        return
    where = select.args.get("where")
    if where is None:
        return
    columns = {c.name.lower() for c in where.find_all(exp.Column)}
    if "category" in columns:
        return
    for equality in where.find_all(exp.EQ):
        column, literal = equality.this, equality.expression
        if isinstance(literal, exp.Column):
            column, literal = literal, column
        if (
            isinstance(column, exp.Column)
            and column.name.lower() == "stream_name"
            and isinstance(literal, exp.Literal)
            and literal.is_string
        ):
            category = category_of(str(literal.this))
            select.where(
                exp.EQ(this=exp.column("category"), expression=exp.Literal.string(category)),
                copy=False,
            )
            return


def run(
    conn: psycopg.Connection[Any],
    text: str,
    *,
    limit: int,
    timeout_ms: int = 10_000,
    explain: bool = False,
) -> tuple[str, Result]:
    """Rewrite and run a query in a READ ONLY transaction with a statement timeout."""
    rewritten = rewrite(text, limit=limit + 1)
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
        reader = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = 'pgstore_reader'"
            " AND pg_has_role(current_user, oid, 'MEMBER')"
            " AND has_schema_privilege(oid, 'pgstore', 'USAGE')"  # set up in this database
        ).fetchone()
        if reader:  # the parser is not the only guard: run as the read-only role
            conn.execute("SET LOCAL ROLE pgstore_reader")
        sql_text = f"EXPLAIN {rewritten}" if explain else rewritten
        cursor = conn.execute(sql_text.encode())
        columns = [d.name for d in cursor.description or []]
        rows = cursor.fetchmany(limit + 1) if not explain else cursor.fetchall()
    truncated = not explain and len(rows) > limit
    return rewritten, Result(columns, rows[:limit] if not explain else rows, truncated)
