"""Dispatch throughput against a hand-written loop, and append-to-handler latency.

python bench/dispatch.py [--quick]
"""

from __future__ import annotations

import threading
import time
import uuid
from functools import partial
from typing import Any

import psycopg
from append import APPEND
from common import (
    ClientPool,
    Report,
    arguments,
    latency_summary,
    scratch_database,
    server_version,
)
from psycopg.types.json import Jsonb

from pgstore import AggregateRoot, Domain, Event, handle
from pgstore.dispatch import Dispatcher
from pgstore.messages import NewMessage
from pgstore.store import EventStore

ACCOUNTS = 50
TICK = 100
WRITERS = 16


def build(conninfo: str, subscription_type: str, latencies: list[float] | None = None) -> Domain:
    domain = Domain(
        "bench",
        dsn=conninfo,
        config={
            "subscription": {
                "subscription_type": subscription_type,
                "messages_per_tick": TICK,
                "blocking_timeout_ms": 5000,
            }
        },
    )

    @domain.aggregate(stream_category="acct")
    class Account(AggregateRoot):
        count: int = 0
        total: int = 0

    @domain.event(part_of=Account)
    class Deposited(Event):
        amount: int
        sent_at: float = 0.0

    @domain.aggregate
    class Balance(AggregateRoot):
        count: int = 0
        total: int = 0

    @domain.event_handler(part_of=Balance, stream_category="acct")
    class Balances:
        @handle(Deposited)
        def deposited(self, event: Deposited) -> None:
            if latencies is not None:
                latencies.append((time.time() - event.sent_at) * 1000)
            repository = domain.repository_for(Balance)
            balance = repository.get(event._message.stream_name)  # type: ignore[attr-defined]
            balance.count += 1
            balance.total += event.amount
            repository.add(balance)

    return domain


def prepare(conninfo: str, events: int) -> None:
    """Balances to update, and `events` deposits spread over the accounts."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # A clean slate for each measurement (the benchmark's own scratch database).
        conn.execute(
            "TRUNCATE pgstore.aggregates, pgstore.handler_positions, pgstore.messages,"
            " pgstore.message_ids, pgstore.stream_heads, pgstore.stream_subscriptions CASCADE"
        )
        for (queue,) in conn.execute("SELECT queue_name FROM pgmq.list_queues()").fetchall():
            conn.execute("SELECT pgmq.drop_queue(%s)", (queue,))
        for account in range(ACCOUNTS):
            conn.execute(
                "INSERT INTO pgstore.aggregates (category, id, version, data)"
                " VALUES ('balance', %s, 0, %s)",
                (f"acct-{account}", Jsonb({"id": f"acct-{account}", "count": 0, "total": 0})),
            )
    with EventStore.connect(conninfo) as store:
        per_account = events // ACCOUNTS
        for account in range(ACCOUNTS if per_account else 0):
            store.append(
                f"acct-{account}",
                [
                    NewMessage("bench.Deposited.v1", {"amount": 1, "sent_at": 0.0})
                    for _ in range(per_account)
                ],
            )


def hand_written_loop(
    conninfo: str,
    latencies: list[float] | None = None,
    stopping: threading.Event | None = None,
) -> int:
    """The same reads and writes with no framework: read a batch, load and update one
    aggregate per event, move a position, commit. Returns once it finds nothing more,
    or, given `stopping`, once that is set and it finds nothing more."""
    handled = 0
    position = 0
    with psycopg.connect(conninfo) as conn:
        while True:
            rows = conn.execute(
                # Below the read horizon, as pgstore reads: without it, a loop that
                # runs while writers append skips the ones that commit late.
                "SELECT global_position, stream_name, data FROM pgstore.messages"
                " WHERE category = 'acct' AND global_position >= %s"
                " AND global_position < pgstore.global_position_horizon()"
                " ORDER BY global_position LIMIT %s",
                (position, TICK),
            ).fetchall()
            if not rows:
                conn.commit()
                if stopping is None or stopping.is_set():
                    return handled
                time.sleep(0.005)
                continue
            for global_position, stream_name, data in rows:
                if latencies is not None:
                    latencies.append((time.time() - data["sent_at"]) * 1000)
                version, state = conn.execute(
                    "SELECT version, data FROM pgstore.aggregates"
                    " WHERE category = 'balance' AND id = %s",
                    (stream_name,),
                ).fetchone() or (0, {})
                state["count"] += 1
                state["total"] += data["amount"]
                conn.execute(
                    "UPDATE pgstore.aggregates SET data = %s, version = version + 1"
                    " WHERE category = 'balance' AND id = %s AND version = %s",
                    (Jsonb(state), stream_name, version),
                )
                position = global_position + 1
                handled += 1
            conn.execute(
                "INSERT INTO pgstore.handler_positions (handler, category, position)"
                " VALUES ('loop', 'acct', %s)"
                " ON CONFLICT (handler) DO UPDATE SET position = excluded.position",
                (position,),
            )
            conn.commit()


def throughput(conninfo: str, events: int, subscription_type: str | None) -> float:
    prepare(conninfo, events)
    started = time.perf_counter()
    if subscription_type is None:
        handled = hand_written_loop(conninfo)
    else:
        domain = build(conninfo, subscription_type)
        Dispatcher(domain, once=True).run()
        domain.close()
        handled = events
    elapsed = time.perf_counter() - started
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT sum((data->>'count')::int) FROM pgstore.aggregates WHERE category = 'balance'"
        ).fetchone()
        assert row is not None and row[0] == events == handled, (row, events, handled)
    return events / elapsed


BOOKS = 50


def spec_handler(conninfo: str, events: int) -> float:
    """The spec's own handler (examples.bookstore.ManageInventory: find the book's
    Inventory by book_id, reduce it, raise StockReduced, save) on `events` shipped
    orders, one stream each, over BOOKS books; events handled per second."""
    from examples import bookstore

    prepare(conninfo, 0)
    bookstore.domain.dsn = conninfo
    inventories = bookstore.domain.repository_for(bookstore.Inventory)
    for book in range(BOOKS):
        inventories.add(bookstore.Inventory(book_id=str(book), in_stock=10 * events))
    with EventStore.connect(conninfo) as store:
        for n in range(events):
            order = str(uuid.uuid4())
            store.append(
                f"order-{order}",
                NewMessage(
                    "bookstore.OrderShipped.v1",
                    {"order_id": order, "book_id": str(n % BOOKS), "quantity": 1,
                     "total_amount": 10},
                ),
            )  # fmt: skip
    started = time.perf_counter()
    Dispatcher(bookstore.domain, once=True).run()
    elapsed = time.perf_counter() - started
    bookstore.domain.close()
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT sum((data->>'in_stock')::int) FROM pgstore.aggregates"
            " WHERE category = 'inventory'"
        ).fetchone()
        assert row is not None and row[0] == BOOKS * 10 * events - events, row
    return events / elapsed


def latency(conninfo: str, subscription_type: str, rate: float, seconds: float) -> dict[str, Any]:
    prepare(conninfo, 0)
    latencies: list[float] = []
    domain = build(conninfo, subscription_type, latencies)
    dispatcher = Dispatcher(domain)
    worker = threading.Thread(target=dispatcher.run)
    worker.start()
    sent = 0
    with EventStore.connect(conninfo) as store:
        time.sleep(1.0)  # let the dispatcher start and catch up before the clock starts
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            store.append(
                f"acct-{sent % ACCOUNTS}",
                NewMessage("bench.Deposited.v1", {"amount": 1, "sent_at": time.time()}),
            )
            sent += 1
            time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        deadline = time.monotonic() + 30
        while len(latencies) < sent and time.monotonic() < deadline:
            time.sleep(0.01)
    dispatcher.stopping.set()
    worker.join(30)
    domain.close()
    return latency_summary(latencies) | {"sent": sent}


def deposit(pause: float, conn: psycopg.Connection[Any], index: int, count: int) -> int:
    """One writer's append, then `pause` seconds of rest (a ClientPool operation)."""
    conn.execute(
        APPEND,
        (
            f"acct-{(index * 7 + count) % ACCOUNTS}",
            uuid.uuid4(),
            "bench.Deposited.v1",
            Jsonb({"amount": 1, "sent_at": time.time()}),
            Jsonb({}),
        ),
    )
    if pause:
        time.sleep(pause)
    return 1


def keeping_up(
    conninfo: str, subscription_type: str | None, seconds: float, pause: float
) -> dict[str, Any]:
    """One dispatcher (None: the hand-written loop) against WRITERS clients appending,
    each resting `pause` seconds between appends: how much of what they wrote it
    handled while they wrote, and how long it took to catch up once they stopped."""
    prepare(conninfo, 0)
    latencies: list[float] = []
    domain = None
    if subscription_type is None:
        stopping = threading.Event()
        worker = threading.Thread(target=hand_written_loop, args=(conninfo, latencies, stopping))
    else:
        domain = build(conninfo, subscription_type, latencies)
        dispatcher = Dispatcher(domain)
        stopping = dispatcher.stopping
        worker = threading.Thread(target=dispatcher.run)
    with ClientPool(conninfo, WRITERS) as writers:
        worker.start()
        appended = round(writers.run(partial(deposit, pause), seconds) * seconds)
        handled_while_writing = len(latencies)
        stopped = time.monotonic()
        deadline = stopped + 120
        while len(latencies) < appended and time.monotonic() < deadline:
            time.sleep(0.01)
        catch_up = time.monotonic() - stopped
    stopping.set()
    worker.join(30)
    if domain is not None:
        domain.close()
    summary = latency_summary(latencies)
    return {
        "appended_per_s": round(appended / seconds),
        "handled_while_writing": round(handled_while_writing / appended, 2),
        "catch_up_s": round(catch_up, 2),
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "events": appended,
    }


def main() -> None:
    args = arguments(__doc__ or "")
    events = 2000 if args.quick else 10_000
    report = Report("dispatch", args.quick)
    with scratch_database(args.dsn, "dispatch") as conninfo:
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {events} events over {ACCOUNTS} "
            f"streams; handler loads and saves one aggregate per event; "
            f"messages_per_tick {TICK}"
        )
        baseline = throughput(conninfo, events, None)
        for kind in ("event_store", "stream"):
            measured = throughput(conninfo, events, kind)
            report.add(
                test="throughput",
                subscription_type=kind,
                loop_per_s=round(baseline),
                pgstore_per_s=round(measured),
                ratio=round(measured / baseline, 2),
            )
        measured = spec_handler(conninfo, events)
        report.add(
            test="the spec's handler",
            subscription_type="event_store",
            loop_per_s=round(baseline),
            pgstore_per_s=round(measured),
            ratio=round(measured / baseline, 2),
        )
        report.notes.append(
            "the spec's handler: examples.bookstore.ManageInventory (find_by book_id, reduce,"
            " raise StockReduced, save), one order stream per event, 50 books; its loop"
            " baseline does less (no event raised); bench/protean_engine.py runs the same"
            " handler on Protean 0.18's engine in the same run"
        )
        rate, seconds = (100.0, 4.0) if args.quick else (200.0, 15.0)
        for kind in ("event_store", "stream"):
            summary = latency(conninfo, kind, rate, seconds)
            report.add(
                test=f"latency at {rate:.0f}/s",
                subscription_type=kind,
                p50_ms=summary["p50_ms"],
                p99_ms=summary["p99_ms"],
                events=summary["sent"],
            )
        pauses = (0.02, 0.0) if args.quick else (0.02, 0.01, 0.005, 0.0)
        for kind in ("hand-written loop", "event_store", "stream"):
            for pause in pauses:
                report.add(
                    test=f"{WRITERS} writers "
                    + (f"resting {pause * 1000:.0f} ms" if pause else "at full speed"),
                    subscription_type=kind,
                    **keeping_up(
                        conninfo,
                        None if kind == "hand-written loop" else kind,
                        2.0 if args.quick else 10.0,
                        pause,
                    ),
                )
    report.finish(args.output)


if __name__ == "__main__":
    main()
