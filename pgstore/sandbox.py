"""`pgstore query`: one allowlisted SELECT, rewritten by sqlglot, run read-only as a reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlglot
from psycopg import sql
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from pgstore._allowlist import FUNCTIONS, QUALIFIED, function_classes
from pgstore._queries import QUERIES
from pgstore.errors import InvalidArgument, NotConfined, QueryRefused, translated_errors
from pgstore.messages import category as category_of
from pgstore.messages import is_category

__all__ = ["NotConfined", "QueryRefused", "Result", "confinement_problem", "rewrite", "run"]

_STATEMENTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Copy,
    exp.Command,
    exp.TruncateTable,
)
_TABLE_FUNCTIONS = ("stream", "category")
_JSON_COLUMNS = ("data", "metadata")
_SOURCE_VIEW = "pgstore.events"

# A row whose text form is larger than this is refused by the server before it is
# sent; with the row cap this bounds what the client holds.
MAX_ROW_BYTES = 8 * 1024 * 1024
MAX_TIMEOUT_SECONDS = 3600.0
# Rows fetched per round trip from the server-side cursor.
FETCH_CHUNK = 1000


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def rewrite(text: str) -> str:
    """Check `text` and return the PostgreSQL to run.

    Refuses (QueryRefused) anything but one SELECT that calls only allowlisted
    functions. Rewrites the conveniences: ``stream('order-1')`` and
    ``category('order')`` in FROM, ``data.x`` and ``metadata.x`` for JSON fields, and a
    ``category = ...`` predicate wherever a query on pgstore.events is restricted to
    one stream (a top-level ``stream_name = '...'`` conjunct), so it reads one partition.
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
    _refuse(tree)
    tree = tree.transform(_table_functions)
    tree = tree.transform(_json_fields)
    for select in tree.find_all(exp.Select):
        _add_partition_key(select)
    return str(tree.sql(dialect="postgres"))


def _refuse(tree: exp.Expression) -> None:
    if not isinstance(tree, _STATEMENTS):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise QueryRefused(f"Only SELECT queries are allowed, not {kind}")
    allowed_classes = function_classes()
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise QueryRefused(
                f"Only reads are allowed: refused {node.key.upper()} (in {tree.key.upper()})"
            )
        if isinstance(node, exp.Lock):
            raise QueryRefused("Refused FOR UPDATE/SHARE: queries here never lock rows")
        if isinstance(node, exp.Into):
            raise QueryRefused("Refused SELECT ... INTO: it creates a table")
        if isinstance(node, exp.Anonymous):
            _check_call(node)
        elif isinstance(node, exp.Func) and type(node) not in allowed_classes:
            raise QueryRefused(
                f"Refused function {node.sql_name().lower()}(): not on pgstore query's allowlist"
            )


def _check_call(node: exp.Anonymous) -> None:
    """A function sqlglot does not know: allowed only by name, and only where listed."""
    name = str(node.name).lower()
    schema = _schema_of(node)
    if schema is None:
        if name in FUNCTIONS:
            return
        if name in _TABLE_FUNCTIONS and isinstance(node.parent, exp.Table):
            return
        raise QueryRefused(
            f"Refused function {name}(): not on pgstore query's allowlist of pure "
            "built-ins (see the README's security model)"
        )
    if name not in QUALIFIED.get(schema, frozenset()):
        raise QueryRefused(f"Refused function {schema}.{name}(): only pgstore's read functions")


def _schema_of(node: exp.Anonymous) -> str | None:
    """`pgstore` for pgstore.read_all(...), in an expression or in FROM; None unqualified."""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        return str(parent.this.name).lower()
    if isinstance(parent, exp.Table) and parent.this is node and parent.args.get("db"):
        return str(parent.db).lower()
    return None


def _table_functions(node: exp.Expression) -> exp.Expression:
    """FROM stream('order-1') / category('order') -> a filtered subquery on pgstore.events."""
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Anonymous):
        return node
    function = node.this
    name = str(function.name).lower()
    if name not in _TABLE_FUNCTIONS or node.args.get("db"):
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
    if name == "stream" and is_category(value):
        raise QueryRefused(
            f"stream() needs a stream name like 'order-1', not the category {value!r}"
        )
    if name == "category" and not is_category(value):
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
    """Add ``category = '<c>'`` where the WHERE clause already implies it.

    Only a top-level AND conjunct ``stream_name = '<c>-...'`` implies it: under an OR
    or a NOT the added predicate would change the answer.
    """
    sources = [
        t
        for t in select.find_all(exp.Table)
        if t.find_ancestor(exp.Select) is select
        and f"{t.db}.{t.name}".lower() in (_SOURCE_VIEW, "pgstore.messages")
    ]
    where = select.args.get("where")
    if not sources or where is None:
        return
    if "category" in {c.name.lower() for c in where.find_all(exp.Column)}:
        return
    aliases = {t.alias_or_name.lower() for t in sources}
    for conjunct in _conjuncts(where.this):
        if not isinstance(conjunct, exp.EQ):
            continue
        column, literal = conjunct.this, conjunct.expression
        if isinstance(literal, exp.Column):
            column, literal = literal, column
        if not (
            isinstance(column, exp.Column)
            and column.name.lower() == "stream_name"
            and isinstance(literal, exp.Literal)
            and literal.is_string
        ):
            continue
        qualifier = column.table.lower() if column.table else None
        if qualifier is None and len(select.args.get("joins") or []) > 0:
            continue  # an unqualified column in a join: which table's category?
        if qualifier is not None and qualifier not in aliases:
            continue
        select.where(
            exp.EQ(
                this=exp.column("category", table=column.table or None),
                expression=exp.Literal.string(category_of(str(literal.this))),
            ),
            copy=False,
        )
        return


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    """The top-level AND terms of a condition (parentheses around an AND are looked through)."""
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def confinement_problem(conn: psycopg.Connection[Any]) -> str | None:
    """Why this session could do more than pgstore_reader allows, or None if it cannot."""
    row = conn.execute(QUERIES["query_login_privileges"]).fetchone()
    assert row is not None
    user, attributes, roles, schemas = row
    if attributes:
        return f"login {user} has {', '.join(attributes)}"
    if roles:
        return f"login {user} is a member of {', '.join(roles)}"
    if schemas:
        return f"login {user} owns schema {', '.join(schemas)}"
    return None


def run(
    conn: psycopg.Connection[Any],
    text: str,
    *,
    limit: int,
    timeout_seconds: float = 10.0,
    explain: bool = False,
    on_rows: Callable[[int], object] | None = None,
) -> tuple[str, Result]:
    """Rewrite and run a query, on a connection confined to pgstore_reader (see
    `pgstore.query_login`), in a READ ONLY transaction with a statement timeout.

    At most `limit` rows come back (whatever the query's shape), each at most
    MAX_ROW_BYTES in text form, read through a server-side cursor in chunks
    (`on_rows` hears how many each brought: a progress bar's feed).
    """
    if not 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidArgument(
            f"The timeout must be above 0 and at most {MAX_TIMEOUT_SECONDS:.0f} seconds, "
            f"not {timeout_seconds}"
        )
    if limit < 1:
        raise InvalidArgument(f"The row limit must be at least 1, not {limit}")
    rewritten = rewrite(text)
    problem = confinement_problem(conn)
    if problem is not None:
        raise NotConfined(
            f"pgstore query runs only as a login confined to pgstore_reader: {problem}"
        )
    with translated_errors(), conn.transaction():
        conn.execute(QUERIES["sandbox_read_only"])
        conn.execute(QUERIES["sandbox_settings"], {"timeout": f"{int(timeout_seconds * 1000)}ms"})
        if explain:
            # `rewritten` is sqlglot's rendering of a tree that passed the checks above.
            cursor = conn.execute(sql.SQL("EXPLAIN {}").format(sql.SQL(rewritten)))
            return rewritten, Result(["QUERY PLAN"], cursor.fetchall(), truncated=False)
        # Every shape (a UNION too) is capped by the outer LIMIT; the row-size check
        # raises before a huge row is sent.
        wrapped = sql.SQL(
            "SELECT q.* FROM ({}) AS q"
            " WHERE pgstore.check_row_size(pg_catalog.octet_length(q::text), {})"
            " LIMIT {}"
        ).format(sql.SQL(rewritten), MAX_ROW_BYTES, limit + 1)
        with conn.cursor(name="pgstore_query") as cursor:
            cursor.execute(wrapped)
            rows: list[tuple[Any, ...]] = []
            while len(rows) <= limit:
                chunk = cursor.fetchmany(min(FETCH_CHUNK, limit + 1 - len(rows)))
                if not chunk:
                    break
                rows.extend(chunk)
                if on_rows is not None:
                    on_rows(len(chunk))
            columns = [d.name for d in cursor.description or []]
    return rewritten, Result(columns, rows[:limit], truncated=len(rows) > limit)
