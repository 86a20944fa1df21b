"""What the command line prints: plain-text tables, messages, the status report."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from tqdm import tqdm

from pgstore.messages import Message
from pgstore.replica import ReplayLag
from pgstore.status import Horizon, Status


def table(
    columns: list[str], rows: list[tuple[Any, ...]], *, rule: bool = True, width: int = 80
) -> str:
    """Left-aligned columns; cells longer than `width` are cut with an ellipsis."""
    cells = [[cell(value, width) for value in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [line(columns)]
    if rule:
        lines.append("  ".join("-" * w for w in widths))
    lines += [line(r) for r in cells]
    return "\n".join(lines)


def cell(value: Any, width: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value)
    elif isinstance(value, datetime):
        text = value.isoformat(timespec="milliseconds")
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def progress(description: str, total: int | None = None, unit: str = "step") -> tqdm[Any]:
    """A progress bar on stderr, shown only when stderr is a terminal (scripts and logs
    get the plain lines instead)."""
    return tqdm(
        total=total, desc=description, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty()
    )


def messages(found: list[Message]) -> str:
    if not found:
        return "(no messages)"
    header = ["global_position", "stream_name", "position", "type", "time", "data"]
    rows = [(m.global_position, m.stream_name, m.position, m.type, m.time, m.data) for m in found]
    return table(header, rows, rule=False, width=60)


def status(current: Status) -> str:
    columns = [
        "handler",
        "type",
        "category",
        "position",
        "lag",
        "lag_s",
        "waiting",
        "queue",
        "failing",
        "dead",
        "conflicts",
        "last_error",
    ]
    rows = [
        (
            h.handler,
            h.subscription_type + (f" x{h.partitions}" if h.partitions > 1 else ""),
            h.category,
            h.position if h.started else "(not started)",
            h.lag_events,
            h.lag_seconds,
            f"{h.waiting_events} ({h.waiting_seconds}s)" if h.waiting_events else 0,
            "" if h.queue_depth is None else h.queue_depth,
            h.failing,
            h.dead_letters,
            h.conflicts,
            (h.last_error or "").splitlines()[0][:60] if h.last_error else "",
        )
        for h in current.handlers
    ]
    lines = [table(columns, rows) if rows else "(no handlers have run yet)", ""]
    lines += horizon(current.horizon)
    return "\n".join(lines)


def replay_lag(lag: ReplayLag) -> str:
    since = "" if lag.seconds is None else f"; last replayed transaction {lag.seconds:.1f}s ago"
    return f"standby: {lag.bytes} bytes of WAL behind the primary{since}"


def horizon(horizon: Horizon) -> list[str]:
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
