"""`pgstore query`, `status` and `replay`: looking at the store and the dispatcher."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime
from typing import Any

import click

from pgstore import query_login, sandbox
from pgstore._tables import cell, table
from pgstore.cli import Context, Int64, Seconds, main, pass_context, reported_errors
from pgstore.status import Horizon, Status, collect, find_handler, rewind


def _plain(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, datetime)
        else value
        if isinstance(value, int | float | str | bool | dict | list | None)
        else str(value)
    )


@main.command("query")
@click.argument("sql")
@click.option(
    "--limit",
    type=Int64(minimum=1),
    default=100,
    show_default=True,
    help="At most this many rows, whatever the query's own LIMIT.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.option("--explain", is_flag=True, help="Print the rewritten SQL and its plan instead.")
@click.option(
    "--timeout",
    "timeout_seconds",
    type=Seconds(maximum=sandbox.MAX_TIMEOUT_SECONDS),
    default=10.0,
    show_default=True,
    help="Statement timeout in seconds.",
)
@click.option(
    "--query-dsn",
    envvar="PGSTORE_QUERY_DSN",
    help="Run the query as this login (it must hold pgstore_reader and nothing else). "
    "Default: pgstore's own login pgstore_query, with a one-minute password.",
)
@pass_context
def query_command(
    ctx: Context,
    sql: str,
    limit: int,
    as_json: bool,
    as_csv: bool,
    explain: bool,
    timeout_seconds: float,
    query_dsn: str | None,
) -> None:
    """Run one read-only SELECT against the store, as a login that can only read.

    \b
    Conveniences, rewritten into plain PostgreSQL:
      FROM stream('order-1')       the stream's events, in order
      FROM category('order')       the category's events, in global order
      data.book_id, metadata.x     JSON fields of data and metadata
    pgstore.events has every message with its metadata decoded; a query restricted to
    one stream_name gets the matching category predicate so it reads one partition.
    Only allowlisted functions may be called (pure built-ins and pgstore's reads).
    """
    with reported_errors():
        sandbox.rewrite(sql)  # refuse a bad query before connecting anywhere
        with query_login.connect(
            ctx.target.conninfo,
            query_conninfo=query_dsn,
            notice=lambda text: click.echo(f"pgstore: {text}", err=True),
        ) as conn:
            rewritten, result = sandbox.run(
                conn, sql, limit=limit, timeout_seconds=timeout_seconds, explain=explain
            )
    if explain:
        click.echo(rewritten)
        click.echo("\n".join(str(row[0]) for row in result.rows))
        return
    if as_json:
        click.echo(
            json.dumps(
                [
                    {c: _plain(v) for c, v in zip(result.columns, row, strict=True)}
                    for row in result.rows
                ],
                indent=2,
            )
        )
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(result.columns)
        writer.writerows([[cell(v) for v in row] for row in result.rows])
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(table(result.columns, result.rows))
        click.echo(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})", err=True)
    if result.truncated:
        click.echo(f"pgstore: more rows than --limit {limit}; showing the first {limit}", err=True)


@main.command()
@click.argument("app", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--watch",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Refresh every SECONDS until interrupted.",
)
@pass_context
def status(ctx: Context, app: str | None, as_json: bool, watch: float | None) -> None:
    """Every handler's position, lag, queue depth, dead letters and last error, and the
    read horizon with the oldest open transaction holding it back."""
    from pgstore.app import load_domain

    with reported_errors():
        domain = load_domain(app) if app else None
        while True:
            with ctx.connect() as conn:
                current = collect(conn, domain)
            if watch:
                click.clear()
            if as_json:
                click.echo(json.dumps(current.to_dict(), indent=2))
            else:
                click.echo(render_status(current))
            if not watch:
                return
            time.sleep(watch)


def render_status(current: Status) -> str:
    columns = [
        "handler",
        "type",
        "category",
        "position",
        "lag",
        "lag_s",
        "waiting",
        "queue",
        "dead",
        "conflicts",
        "last_error",
    ]
    rows = [
        (
            h.handler,
            h.subscription_type,
            h.category,
            h.position if h.started else "(not started)",
            h.lag_events,
            h.lag_seconds,
            f"{h.waiting_events} ({h.waiting_seconds}s)" if h.waiting_events else 0,
            "" if h.queue_depth is None else h.queue_depth,
            h.dead_letters,
            h.conflicts,
            (h.last_error or "").splitlines()[0][:60] if h.last_error else "",
        )
        for h in current.handlers
    ]
    lines = [table(columns, rows) if rows else "(no handlers have run yet)", ""]
    lines += render_horizon(current.horizon)
    return "\n".join(lines)


def render_horizon(horizon: Horizon) -> list[str]:
    """The read horizon, and the transaction holding it back, as far as it is visible."""
    lines = [f"read horizon: global position {horizon.global_position}"]
    if horizon.waiting_events:
        lines.append(
            f"  {horizon.waiting_events} committed event(s) wait above it, the oldest for "
            f"{horizon.stalled_seconds}s"
        )
    if not horizon.held:
        lines.append("holding it back: nothing (no transaction with an id is running)")
        return lines
    if horizon.holder_prepared is not None:
        who = f"prepared transaction {horizon.holder_prepared!r}"
    elif horizon.holder_pid is not None:
        who = f"pid {horizon.holder_pid}"
    else:
        who = "a transaction that has just ended"
    where = ", ".join(
        part
        for part in (
            f"database {horizon.holder_database}" if horizon.holder_database else "",
            f"role {horizon.holder_role}" if horizon.holder_role else "",
            f"transaction {horizon.holder_transaction_id}",
        )
        if part
    )
    lines.append(f"holding it back: {who} ({where})")
    if horizon.holder_seconds is None:
        lines.append(
            "  its age, state and query are hidden from this login "
            "(grant it pg_read_all_stats to see them)"
        )
    else:
        query = (horizon.holder_query or "").strip().replace("\n", " ")[:100]
        lines.append(
            f"  open {horizon.holder_seconds}s, {horizon.holder_state or 'state unknown'}"
            + (f": {query}" if query else "")
        )
    if horizon.waiting_events:
        lines.append(
            "  every subscriber waits for it; end it, or set idle_in_transaction_session_timeout"
            " (and transaction_timeout on PostgreSQL 17+) for the roles that leave such"
            " transactions open"
        )
    return lines


@main.command()
@click.argument("handler")
@click.option("--from", "start", type=Int64(minimum=0), help="Global position to start again from.")
@click.option(
    "--from-time",
    "since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Start again from the first event at or after this time (UTC).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Show a progress bar until the handler catches up.")
@pass_context
def replay(
    ctx: Context, handler: str, start: int | None, since: datetime | None, yes: bool, wait: bool
) -> None:
    """Rewind HANDLER (only that handler) so the dispatcher runs it again from a point."""
    if (start is None) == (since is None):
        raise click.UsageError("give exactly one of --from POSITION and --from-time TIME")
    with reported_errors(), ctx.connect() as conn:
        conn.autocommit = True
        record = find_handler(conn, handler)
        where = (
            f"global position {start}"
            if start is not None
            else f"the first event at or after {since}"
        )
        if not yes:
            click.confirm(
                f"Rewind {record.name} (now at {record.position}) to {where}? "
                "Its effects will be applied again.",
                abort=True,
            )
        from datetime import UTC

        rewound, position = rewind(
            conn,
            record.name,
            global_position=start,
            since=since.replace(tzinfo=UTC) if since else None,
        )
        click.echo(f"{rewound.name}: position {rewound.position} -> {position}")
        if wait:
            follow(conn, rewound.name)


def follow(conn: Any, handler: str) -> None:
    """A progress bar of the handler's backlog shrinking to zero."""

    def lag() -> int:
        row = conn.execute(
            "SELECT lag_events FROM pgstore.handlers WHERE handler = %s", (handler,)
        ).fetchone()
        return int(row[0]) if row else 0

    total = lag()
    with click.progressbar(length=total, label=f"{handler} catching up") as bar:
        done = 0
        while done < total:
            remaining = lag()
            bar.update(max(0, total - remaining - done))
            done = max(done, total - remaining)
            time.sleep(0.2)
