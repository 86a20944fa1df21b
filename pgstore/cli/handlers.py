"""`pgstore dispatch`, `dlq`, `config` and `queues`: running and operating event handlers."""

from __future__ import annotations

import json
import logging
import os
import sys

import click

from pgstore import operations, subscriptions
from pgstore._queries import QUERIES
from pgstore.app import load_domain
from pgstore.cli._base import (
    Context,
    confirmed,
    dsn_option,
    pass_context,
    read_dsn_option,
    reported_errors,
)
from pgstore.cli.store import create_queues
from pgstore.cli.workers import supervise
from pgstore.dispatch import Dispatcher
from pgstore.dispatch.dead_letters import dumps
from pgstore.domain import Domain
from pgstore.errors import UnknownDeadLetter


def domain_for(ctx: Context, app: str) -> Domain:
    domain = load_domain(app)
    if domain.dsn is None:
        domain.dsn = ctx.target.conninfo
    return domain


@click.command()
@click.argument("app")
@click.option(
    "--once", is_flag=True, help="Handle what is there, then exit (for scripts and tests)."
)
@click.option("--handler", "handlers", multiple=True, help="Run only this handler (repeatable).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (they share stream handlers' queues, and the partitions of "
    "event_store handlers split with the setting `partitions`); one that dies "
    "unexpectedly is replaced.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line (time, level, logger, pid, message).",
)
@click.option(
    "--http",
    metavar="HOST:PORT",
    help="Serve /healthz and /metrics (Prometheus) here while dispatching.",
)
@read_dsn_option
@dsn_option
@pass_context
def dispatch(
    ctx: Context,
    app: str,
    once: bool,
    handlers: tuple[str, ...],
    workers: int,
    verbose: int,
    log_format: str,
    http: str | None,
    read_dsn: str | None,
) -> None:
    """Run the event handlers of APP (`module` holding one Domain, or `module:domain`).

    Each handler's position (or queue message) moves in the same transaction as its
    writes, so its database effects happen exactly once. Stops cleanly on
    SIGINT/SIGTERM: the batch in hand is finished and committed.
    """
    configure_logging(logging.WARNING - 10 * (verbose + 1), log_format)
    if workers > 1:
        if http:
            raise click.UsageError("--http serves one process: give it to one worker at a time")
        sys.exit(run_workers(ctx, workers, once=once))
    with reported_errors():
        domain = domain_for(ctx, app)
        dispatcher = Dispatcher(
            domain, handlers=list(handlers) or None, once=once, http=http, read_dsn=read_dsn
        )
        dispatcher.install_signal_handlers()
        names = ", ".join(s.spec.name for s in dispatcher.subscriptions)
        click.echo(f"pgstore: dispatching {names}" + (" (once)" if once else ""), err=True)
        dispatcher.run()
        domain.close()


class JsonFormatter(logging.Formatter):
    """One JSON object per log record, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: int, log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])


def run_workers(ctx: Context, workers: int, *, once: bool) -> int:
    """Start `workers` copies of this command as processes (see pgstore.cli.workers)."""
    argv = [arg for arg in sys.argv[1:] if not arg.startswith("--workers")]
    if "--workers" in sys.argv:  # the "--workers N" form
        index = sys.argv.index("--workers")
        argv = sys.argv[1:index] + sys.argv[index + 2 :]
    env = os.environ | {"PGSTORE_DSN": ctx.target.conninfo}
    # A --once worker that dies has left its work to the others; --once ends with its
    # exit code rather than starting another.
    return supervise(argv, env, workers, restart=not once)


@click.group()
def config() -> None:
    """Subscription configuration."""


@config.command("show")
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(app: str, as_json: bool) -> None:
    """Print every handler's resolved settings and where each value came from."""
    with reported_errors():
        domain = load_domain(app)
        resolved = {
            spec.name: subscriptions.resolve(spec, domain.config) for spec in domain.handlers
        }
    if as_json:
        click.echo(
            json.dumps(
                {
                    name: {
                        key: {"value": getattr(c, key), "source": c.sources[key]}
                        for key in c.sources
                    }
                    for name, c in resolved.items()
                },
                indent=2,
            )
        )
        return
    for name, resolved_config in resolved.items():
        click.echo(name)
        for key, source in resolved_config.sources.items():
            click.echo(f"  {key:28} {getattr(resolved_config, key)!s:12} {source}")


@click.group()
def dlq() -> None:
    """A handler's dead letters: list, show, replay (to that handler only), purge."""


@dlq.command("list")
@click.argument("handler")
@dsn_option
@pass_context
def dlq_list(ctx: Context, handler: str) -> None:
    """List HANDLER's dead letters."""
    with reported_errors(), ctx.connect() as conn:
        letters = operations.dead_letters_for(conn, handler).list(conn)
    if not letters:
        click.echo("(no dead letters)")
    for letter in letters:
        click.echo(
            f"{letter.message.id}  {letter.message.type}  {letter.message.stream_name}  "
            f"attempts={letter.attempts}  last={letter.last_failed_at:%Y-%m-%d %H:%M:%S}  "
            f"{letter.error.splitlines()[0][:80]}"
            + ("  (replay requested)" if letter.replay_requested else "")
        )


@dlq.command("show")
@click.argument("handler")
@click.argument("message_id")
@dsn_option
@pass_context
def dlq_show(ctx: Context, handler: str, message_id: str) -> None:
    """Show one dead letter in full: message, error, traceback, attempts, times."""
    with reported_errors(), ctx.connect() as conn:
        store = operations.dead_letters_for(conn, handler)
        letters = [letter for letter in store.list(conn) if str(letter.message.id) == message_id]
        if not letters:
            raise UnknownDeadLetter(f"No dead letter {message_id} for {store.handler}")
    click.echo(dumps(letters[0]))


@dlq.command("replay")
@click.argument("handler")
@click.argument("message_ids", nargs=-1)
@dsn_option
@pass_context
def dlq_replay(ctx: Context, handler: str, message_ids: tuple[str, ...]) -> None:
    """Re-deliver dead letters to HANDLER only (all of them, or the MESSAGE_IDS given)."""
    with reported_errors(), ctx.connect() as conn:
        count = operations.dead_letters_for(conn, handler).replay(conn, set(message_ids) or None)
        conn.commit()
    click.echo(f"{count} dead letter(s) queued for replay; `pgstore dispatch` runs them")


@dlq.command("purge")
@click.argument("handler")
@click.argument("message_ids", nargs=-1)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@dsn_option
@pass_context
def dlq_purge(ctx: Context, handler: str, message_ids: tuple[str, ...], yes: bool) -> None:
    """Delete dead letters of HANDLER (all of them, or the MESSAGE_IDS given)."""
    question = f"Delete {'the given' if message_ids else 'all'} dead letters of {handler}?"
    if not confirmed(question, yes):
        return
    with reported_errors(), ctx.connect() as conn:
        count = operations.dead_letters_for(conn, handler).purge(conn, set(message_ids) or None)
        conn.commit()
    click.echo(f"{count} dead letter(s) purged")


@click.group()
def queues() -> None:
    """The pgmq queues of stream-type handlers."""


@queues.command("list")
@dsn_option
@pass_context
def queues_list(ctx: Context) -> None:
    """List every stream subscription with its queue depth and dead letters."""
    with reported_errors(), ctx.connect() as conn:
        rows = conn.execute(QUERIES["stream_subscriptions_list"]).fetchall()
    for handler, category, queue, _, depth, dead in rows:
        click.echo(f"{handler}  category={category}  queue={queue}  depth={depth}  dead={dead}")
    if not rows:
        click.echo("(no stream subscriptions)")


@queues.command("create")
@click.argument("app")
@dsn_option
@pass_context
def queues_create(ctx: Context, app: str) -> None:
    """Create the queues of APP's stream handlers (the dispatcher also does at start)."""
    with reported_errors(), ctx.connect() as conn:
        created = create_queues(conn, load_domain(app))
        conn.commit()
    for handler, queue, dead_letter_queue in created:
        click.echo(f"{handler}: {queue}, {dead_letter_queue}")


@queues.command("drop")
@click.argument("handler")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@dsn_option
@pass_context
def queues_drop(ctx: Context, handler: str, yes: bool) -> None:
    """Drop HANDLER's queue, dead-letter queue and position (messages in them are lost)."""
    if not confirmed(f"Drop the queues of {handler}, with the messages in them?", yes):
        return
    with reported_errors(), ctx.connect() as conn:
        queue, dead_letter_queue = operations.drop_subscription(conn, handler)
        conn.commit()
    click.echo(f"dropped {queue} and {dead_letter_queue}")
