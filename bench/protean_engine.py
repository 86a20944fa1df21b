"""The spec's handler on pgstore against the same handler on Protean 0.18's engine with
Message DB 1.3, on the same server in the same run: events handled per second.

Protean (from PyPI) goes into a virtual environment of its own and Message DB's SQL
(from the npm package @eventide/message-db) into a scratch database of its own, both
kept in bench/.cache/ for the next run.

python bench/protean_engine.py [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import venv
from pathlib import Path

import psycopg
from common import Report, arguments, scratch_database, server_version
from dispatch import BOOKS, spec_handler
from message_db_install import CACHE, message_db_database, message_db_sql

HERE = Path(__file__).resolve().parent
PROTEAN = "protean[message-db,postgresql]==0.18.0"


def protean_python() -> Path:
    """A Python with Protean installed (made once)."""
    environment = CACHE / "venv"
    python = environment / "bin" / "python"
    marker = environment / f"{PROTEAN}.installed"
    if not marker.exists():
        venv.create(environment, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PROTEAN],
            check=True,
        )
        marker.touch()
    return python


def protean_rate(python: Path, conninfo: str, events: int) -> float:
    """Events per second of Protean's engine on the spec's handler."""
    # Protean's Message DB adapter takes a URL; every setting goes in its query string
    # (the server may be a socket directory).
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    url = "postgresql:///?" + urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    result = subprocess.run(
        # -I: the bench folder stays off its path (its modules would shadow Protean's).
        [str(python), "-I", str(HERE / "protean_app.py"), url, str(events), str(BOOKS)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"Protean's run failed ({result.returncode}):\n{result.stderr[-4000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return float(measured["events"]) / float(measured["seconds"])


def main() -> None:
    args = arguments(__doc__ or "")
    events, rounds = (500, 2) if args.quick else (2000, 3)
    report = Report("protean_engine", args.quick)
    python = protean_python()
    database = message_db_sql()
    ratios: list[tuple[float, float, float]] = []
    with scratch_database(args.dsn, "protean") as conninfo:
        report.notes.append(
            f"PostgreSQL {server_version(conninfo)}; {events} shipped orders over {BOOKS}"
            f" books; {rounds} rounds, medians; {PROTEAN} with Message DB"
            f" {(database / 'VERSION.txt').read_text().strip()}, its aggregates in"
            " PostgreSQL (its SQLAlchemy provider) as pgstore's are; both with Protean's"
            " default of 10 messages per tick"
        )
        for _ in range(rounds):
            with message_db_database(args.dsn, database) as message_db:
                theirs = protean_rate(python, message_db, events)
            ours = spec_handler(conninfo, events)
            ratios.append((ours / theirs, ours, theirs))
    ratio, ours, theirs = sorted(ratios)[len(ratios) // 2]
    report.add(
        test="the spec's handler, event_store",
        pgstore_per_s=round(ours),
        protean_per_s=round(theirs),
        ratio=round(ratio, 1),
    )
    report.finish(args.output)


if __name__ == "__main__":
    main()
