"""`pgstore query`, `status` and `rewind`: looking at the store and moving a handler."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import click
import psycopg

from pgstore import operations, query_login, replica, sandbox
from pgstore._queries import QUERIES
from pgstore.app import load_domain
from pgstore.cli import _render
from pgstore.cli._base import (
    Context,
    Int64,
    Seconds,
    confirmed,
    dsn_option,
    pass_context,
    read_dsn_option,
    reported_errors,
)
from pgstore.status import collect


def _plain(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, datetime)
        else value
        if isinstance(value, int | float | str | bool | dict | list | None)
        else str(value)
    )


@click.command("query")
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
@read_dsn_option
@dsn_option
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
    read_dsn: str | None,
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
        with (
            query_login.connect(
                ctx.target.conninfo,
                query_conninfo=query_dsn,
                read_conninfo=read_dsn,
                notice=lambda text: click.echo(f"pgstore: {text}", err=True),
            ) as conn,
            _render.progress("fetching", total=limit, unit="row") as bar,
        ):
            rewritten, result = sandbox.run(
                conn,
                sql,
                limit=limit,
                timeout_seconds=timeout_seconds,
                explain=explain,
                on_rows=bar.update,
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
        writer = csv.writer(out, lineterminator="\n")  # no carriage returns, for shells
        writer.writerow(result.columns)
        writer.writerows([[_render.cell(v) for v in row] for row in result.rows])
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(_render.table(result.columns, result.rows))
        click.echo(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})", err=True)
    if result.truncated:
        click.echo(f"pgstore: more rows than --limit {limit}; showing the first {limit}", err=True)


@click.command()
@click.argument("app", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--watch",
    type=Seconds(maximum=86400),
    default=None,
    metavar="SECONDS",
    help="Refresh every SECONDS until interrupted.",
)
@read_dsn_option
@dsn_option
@pass_context
def status(
    ctx: Context, app: str | None, as_json: bool, watch: float | None, read_dsn: str | None
) -> None:
    """Every handler's position, lag, events waiting above the read horizon, queue depth,
    dead letters, conflicts and last error, and the transaction holding the horizon;
    with --read-dsn, how far that standby's replay is behind."""
    with reported_errors():
        domain = load_domain(app) if app else None
        while True:
            lag = None
            with ctx.connect() as conn:
                current = collect(conn, domain)
                if read_dsn:
                    with replica.connect_standby(read_dsn) as standby:
                        lag = replica.replay_lag(conn, standby)
            if watch:
                click.clear()
            if as_json:
                document = current.to_dict()
                if lag is not None:
                    document["standby"] = {"replay_lag_bytes": lag.bytes,
                                           "last_replayed_seconds_ago": lag.seconds}  # fmt: skip
                click.echo(json.dumps(document, indent=2))
            else:
                click.echo(_render.status(current))
                if lag is not None:
                    click.echo(_render.replay_lag(lag))
            if not watch:
                return
            time.sleep(watch)


@click.command()
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
@dsn_option
@pass_context
def rewind(
    ctx: Context, handler: str, start: int | None, since: datetime | None, yes: bool, wait: bool
) -> None:
    """Rewind HANDLER (only that handler) so the dispatcher runs it again from a point.

    (`pgstore replay` is the same command under its old name.)
    """
    if (start is None) == (since is None):
        raise click.UsageError("give exactly one of --from POSITION and --from-time TIME")
    with reported_errors(), ctx.connect() as conn:
        conn.autocommit = True
        record = operations.find_handler(conn, handler)
        where = (
            f"global position {start}"
            if start is not None
            else f"the first event at or after {since}"
        )
        question = (
            f"Rewind {record.name} (now at {record.position}) to {where}? "
            "Its effects will be applied again."
        )
        if not confirmed(question, yes):
            return
        rewound, position = operations.rewind(
            conn,
            record.name,
            global_position=start,
            since=since.replace(tzinfo=UTC) if since else None,
        )
        click.echo(f"{rewound.name}: position {rewound.position} -> {position}")
        if wait:
            follow(conn, rewound.name)


def follow(conn: psycopg.Connection[Any], handler: str) -> None:
    """A progress bar of the handler's backlog shrinking to zero (quiet when not a TTY)."""

    def lag() -> int:
        row = conn.execute(QUERIES["handler_lag"], {"handler": handler}).fetchone()
        return int(row[0]) if row else 0

    total = lag()
    with _render.progress(f"{handler} catching up", total=total, unit="event") as bar:
        done = 0
        while done < total:
            remaining = lag()
            bar.update(max(0, total - remaining - done))
            done = max(done, total - remaining)
            time.sleep(0.2)
    click.echo(f"{handler}: caught up", err=True)
