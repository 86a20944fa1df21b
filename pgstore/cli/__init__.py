"""The `pgstore` command line: the group, its commands, and the entry point."""

from __future__ import annotations

import sys

import click

from pgstore.cli import handlers, inspect, observatory, server, store
from pgstore.cli._base import DSN_HELP, Context, Exit

__all__ = ["Exit", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dsn", envvar="PGSTORE_DSN", help=DSN_HELP)
@click.version_option(package_name="pgstore")
@click.pass_context
def main(ctx: click.Context, dsn: str | None) -> None:
    """pgstore: a PostgreSQL event store and exactly-once event dispatcher.

    With no database configured, pgstore starts (or reuses) an embedded PostgreSQL
    in a local data directory; `pgstore server status` says where. --dsn may come
    before or after the subcommand.
    """
    ctx.obj = Context(dsn)


for command in (
    store.migrate,
    store.rebase,
    store.append,
    store.read,
    server.server,
    handlers.dispatch,
    handlers.config,
    handlers.dlq,
    handlers.queues,
    inspect.query_command,
    inspect.status,
    inspect.rewind,
    observatory.observatory,
):
    main.add_command(command)
main.add_command(inspect.rewind, "replay")  # the old name, kept for a release


def run() -> None:
    """The `pgstore` executable: click's own handling, but Ctrl-C exits 130 (the shell's
    convention), not 1."""
    try:
        code = main.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("\npgstore: interrupted", err=True)
        sys.exit(Exit.INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else Exit.OK)  # --help and --version return 0
