"""The house's plan, checked: no import circles in pgstore, SQL in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pgstore"

# Statements still composed in Python, each for a reason (see the module):
#   sandbox.py      EXPLAIN of, and the row-capping wrapper around, a user's checked query
#   query_login.py  ALTER ROLE with a password hash (a utility statement takes no
#                   parameters)
#   _allowlist.py   probes that sqlglot parses to learn its classes, never run
ALLOWED_SQL = {"sandbox.py": 2, "query_login.py": 1, "_allowlist.py": 2}
_SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LOCK|SET|VACUUM|LISTEN|EXPLAIN) "
)


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports() -> dict[str, set[str]]:
    """Module -> the pgstore modules it imports (at run time or for type checking):
    `from pgstore import x` counts as importing pgstore.x when x is a module."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in known:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
                graph[name] |= submodules
                if len(submodules) < len(node.names):
                    graph[name].add(node.module)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names} & known.keys()
    return graph


def test_no_import_circles() -> None:
    graph = imports()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if name in done:
            return
        visiting.append(name)
        for imported in sorted(graph[name]):
            if imported != name and not name.startswith(imported + "."):
                visit(imported)  # (a package's own __init__ is not a circle)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


# ARCHITECTURE.md's layers, top first: a module imports only its own layer and above.
LAYERS = [
    {"errors", "_queries", "_resources", "connection", "server", "tracing"},
    {"messages", "unit_of_work", "deferred", "store", "migrate", "replica"},
    {"_fields", "fields", "model", "config", "handlers", "envelope", "repository", "subscriptions"},
    {"commands", "domain"},
    {"dispatch"},
    {"status", "operations", "sandbox", "_allowlist", "query_login", "app", "observatory"},
    {"cli", "__main__", ""},
]


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(index for index, names in enumerate(LAYERS) if top in names)


def test_every_module_keeps_to_its_layer() -> None:
    for module, imported in imports().items():
        for target in imported:
            assert layer(target) <= layer(module), f"{module} imports {target}, a lower layer"


def test_sql_lives_in_the_named_queries() -> None:
    counts: dict[str, int] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _SQL.match(node.value)
            ):
                relative = str(path.relative_to(PACKAGE))
                counts[relative] = counts.get(relative, 0) + 1
    over = {path: count for path, count in counts.items() if count > ALLOWED_SQL.get(path, 0)}
    assert not over, f"SQL outside pgstore/_queries.sql: {over}"
