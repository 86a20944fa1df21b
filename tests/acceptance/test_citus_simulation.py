"""SCALING.md's design for Citus, simulated without Citus: two independent servers stand
for two worker nodes, the client routes each category to its node, and a transaction
that spans both commits with PREPARE TRANSACTION. What it shows: per-node positions
and horizons keep each category exactly once and gap-free for its readers, also across
a two-phase commit that finishes on one node after the other; what it gives up: one
global order and id uniqueness across nodes. (What it cannot show is listed in
SCALING.md.)"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgstore.messages import NewMessage
from pgstore.migrate import migrate
from pgstore.store import EventStore
from tests.pgcluster import LocalCluster

Conn = psycopg.Connection[Any]


class Router:
    """Category -> node, as Citus would place a category's shard (hash of the
    distribution column): every stream of a category, its head row and its positions
    live on one node."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes

    def node_of(self, category: str) -> str:
        return self.nodes[zlib.crc32(category.encode()) % len(self.nodes)]

    def categories_on(self, node: str, count: int, prefix: str) -> list[str]:
        """The first `count` category names starting with `prefix` that land on `node`."""
        names = (f"{prefix}{n}" for n in range(1000))
        return [name for name in names if self.node_of(name) == node][:count]


@pytest.fixture(scope="module")
def nodes() -> Iterator[list[str]]:
    clusters = [LocalCluster(settings={"max_prepared_transactions": "10"}) for _ in range(2)]
    try:
        for cluster in clusters:
            cluster.start()
            with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
                admin.execute("CREATE DATABASE node")
            with psycopg.connect(cluster.dsn("node")) as conn:
                migrate(conn)
        yield [cluster.dsn("node") for cluster in clusters]
    finally:
        for cluster in clusters:
            cluster.destroy()


def read(conn: Conn, category: str, start: int) -> list[tuple[int, str]]:
    return [
        (int(g), str(t))
        for g, t in conn.execute(
            "SELECT global_position, type FROM pgstore.read_category(%s, %s, 100)",
            (category, start),
        )
    ]


def test_a_two_phase_commit_across_nodes_is_read_whole_on_each(nodes: list[str]) -> None:
    """One command's events land in a category on each node, committed with 2PC. While
    node B's part is prepared but not committed (A's already is), B's readers stop
    below it (a prepared transaction holds the node's horizon) and skip nothing;
    horizon_holder names it by its gid."""
    router = Router(nodes)
    (on_a,) = router.categories_on(nodes[0], 1, "orders")
    (on_b,) = router.categories_on(nodes[1], 1, "payments")
    gid = f"cmd-{uuid.uuid4().hex[:8]}"
    with (
        psycopg.connect(nodes[0]) as a,
        psycopg.connect(nodes[1]) as b,
        psycopg.connect(nodes[1], autocommit=True) as b_reader,
        EventStore.connect(nodes[0]) as a_store,
        EventStore.connect(nodes[1]) as b_store,
    ):
        # One command, two nodes: each part in the transaction of its node's connection.
        # A transaction to be prepared may not NOTIFY: no wake-up from these appends.
        for part in (a, b):
            part.execute("SET LOCAL pgstore.wake_up = 'off'")
        a_store.append(f"{on_a}-1", NewMessage("Reserved", {}), conn=a)
        b_store.append(f"{on_b}-1", NewMessage("Charged", {}), conn=b)
        a.execute(f"PREPARE TRANSACTION '{gid}'")
        b.execute(f"PREPARE TRANSACTION '{gid}'")
        a.autocommit = b.autocommit = True  # prepared: the sessions are free again
        # A later, ordinary append on node B commits while B's part is prepared.
        b_store.append(f"{on_b}-2", NewMessage("Other", {}))
        a.execute(f"COMMIT PREPARED '{gid}'")  # the coordinator's order: A first
        assert read(b_reader, on_b, 0) == []  # held below the prepared part, not past it
        holder = b_reader.execute("SELECT prepared FROM pgstore.horizon_holder()").fetchone()
        assert holder == (gid,)
        b.execute(f"COMMIT PREPARED '{gid}'")
        assert [t for _, t in read(b_reader, on_b, 0)] == ["Charged", "Other"]


def test_positions_are_per_node(nodes: list[str]) -> None:
    """Each node numbers its own categories: global positions on two nodes can tie or
    cross, so `$all` has no single order across nodes, and the same message id can be
    stored on both (uniqueness holds per node only: the distribution column must be in
    every unique constraint)."""
    router = Router(nodes)
    (on_a,) = router.categories_on(nodes[0], 1, "left")
    (on_b,) = router.categories_on(nodes[1], 1, "right")
    same_id = uuid.uuid4()
    with EventStore.connect(nodes[0]) as a, EventStore.connect(nodes[1]) as b:
        (first,) = a.append(f"{on_a}-9", NewMessage("T", {}, id=same_id))
        (second,) = b.append(f"{on_b}-9", NewMessage("T", {}, id=same_id))
    assert first.id == second.id  # refused on one server; accepted across two
    assert first.global_position >> 16 != 0 and second.global_position >> 16 != 0


def test_each_node_dispatches_its_own_categories_exactly_once(nodes: list[str]) -> None:
    """A handler per node reads only the categories routed there, with that node's
    positions and horizon: appends spread over four categories on two nodes are each
    read once, in order, none missed."""
    router = Router(nodes)
    categories = {node: router.categories_on(node, 2, "tick") for node in nodes}
    with EventStore.connect(nodes[0]) as a, EventStore.connect(nodes[1]) as b:
        stores = {nodes[0]: a, nodes[1]: b}
        for n in range(25):
            for node, names in categories.items():
                for category in names:
                    stores[node].append(f"{category}-{n % 3}", NewMessage("Tick", {"n": n}))
    for node, names in categories.items():
        with psycopg.connect(node, autocommit=True) as conn:
            for category in names:
                seen: list[int] = []
                position = 0
                while batch := read(conn, category, position):
                    seen += [g for g, _ in batch]
                    position = batch[-1][0] + 1
                assert len(seen) == 25 and seen == sorted(seen)
