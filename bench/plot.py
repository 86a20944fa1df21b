"""Pictures of the latest results, as PNGs: append throughput against clients (from
bench/append.py) and dispatch throughput against workers (from bench/workers.py, when
it has run).

python bench/plot.py [--input FILE] [--output FILE]   (needs pip install '.[bench]')
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# (column in append.json, label, line style)
SERIES = [
    ("bare_insert_per_s", "plain INSERT, primary key only", "--"),
    ("indexed_insert_per_s", "plain INSERT, event-store indexes", ":"),
    ("table_insert_per_s", "INSERT into pgstore.messages", "-."),
    ("pgstore_per_s", "pgstore.append_messages", "-"),
    ("message_db_per_s", "Message DB's write_message", (0, (5, 1, 1, 1))),
]
# Series that change with the category count (the plain INSERTs do not).
PER_CATEGORY = {"pgstore_per_s", "message_db_per_s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, default=RESULTS / "append.json")
    parser.add_argument("--output", type=Path, default=RESULTS / "append_clients.png")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        from matplotlib import pyplot
    except ImportError:
        sys.exit("bench/plot.py needs matplotlib: pip install '.[bench]'")
    if not args.input.exists():
        sys.exit(f"no results in {args.input}: run python bench/append.py first")
    document = json.loads(args.input.read_text())
    rows: list[dict[str, Any]] = [row for row in document["rows"] if row["test"] == "single append"]

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for categories, marker in zip(
        sorted({int(row["categories"]) for row in rows}), "os^v", strict=False
    ):
        shaped = sorted(
            (row for row in rows if int(row["categories"]) == categories),
            key=lambda row: int(row["clients"]),
        )
        clients = [int(row["clients"]) for row in shaped]
        for column, label, style in SERIES:
            if categories > 1 and column not in PER_CATEGORY:
                continue
            points = [
                (c, row[column]) for c, row in zip(clients, shaped, strict=True) if column in row
            ]
            if not points:
                continue
            axes.plot(
                [c for c, _ in points],
                [value for _, value in points],
                linestyle=style,
                marker=marker,
                label=f"{label} ({categories} categor{'y' if categories == 1 else 'ies'})",
            )
    axes.set_xscale("log", base=2)
    axes.set_xticks([1, 4, 16], labels=["1", "4", "16"])
    axes.set_xlabel("concurrent clients")
    axes.set_ylabel("single-event appends per second")
    axes.set_ylim(bottom=0)
    axes.set_title(f"pgstore append throughput ({document['when']}, quick={document['quick']})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    args.output.parent.mkdir(exist_ok=True)
    figure.savefig(args.output, dpi=120)
    print(f"plot: {args.output}")
    workers = RESULTS / "workers.json"
    if workers.exists():
        plot_workers(pyplot, json.loads(workers.read_text()), RESULTS / "workers_scaling.png")


def plot_workers(pyplot: Any, document: dict[str, Any], output: Path) -> None:
    """Events per second against workers, with the ideal (linear from one worker)."""
    rows = sorted(document["rows"], key=lambda row: int(row["workers"]))
    workers = [int(row["workers"]) for row in rows]
    rates = [row["events_per_s"] for row in rows]
    figure, axes = pyplot.subplots(figsize=(6, 4))
    axes.plot(workers, rates, marker="o", label="pgstore dispatch --workers N")
    axes.plot(workers, [rates[0] * n for n in workers], linestyle=":", label="linear")
    axes.set_xticks(workers)
    axes.set_xlabel("workers")
    axes.set_ylabel("events handled per second")
    axes.set_ylim(bottom=0)
    axes.set_title(f"event_store handler, I/O-bound ({document['when']})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    print(f"plot: {output}")


if __name__ == "__main__":
    main()
