"""An event's causation chain as a picture (SVG): its causes above, its effects below."""

from __future__ import annotations

from html import escape
from typing import Any

_WIDTH, _HEIGHT, _GAP, _LEFT = 440, 44, 26, 20


def svg(chain: dict[str, Any]) -> str:
    """Boxes for the causes (oldest first), the event (highlighted), and what it caused,
    joined by arrows; each box links to its event."""
    causes, event, effects = chain["causes"], chain["event"], chain["effects"]
    rows: list[tuple[dict[str, Any], str]] = [(cause, "cause") for cause in causes]
    rows.append((event, "event"))
    rows += [(effect, "effect") for effect in effects]
    height = len(rows) * (_HEIGHT + _GAP)
    parts = [
        f'<svg id="chain" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH + 2 * _LEFT}" '
        f'height="{height}" role="img" aria-label="causation chain">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/>'
        "</marker></defs>",
    ]
    event_row = len(causes)
    for index, (node, role) in enumerate(rows):
        top = index * (_HEIGHT + _GAP)
        if index:  # causes and the event follow each other; every effect hangs off the event
            parts.append(_arrow(index - 1 if role != "effect" else event_row, index))
        fill = {"cause": "#eef1f5", "event": "#d9e8ff", "effect": "#eefaf0"}[role]
        label = escape(str(node.get("type", "")))
        stream = escape(str(node.get("stream_name", "")))
        box = (
            f'<rect x="{_LEFT}" y="{top}" width="{_WIDTH}" height="{_HEIGHT}" rx="6" '
            f'fill="{fill}" stroke="#8a94a6"/>'
            f'<text x="{_LEFT + 10}" y="{top + 18}" font-size="13" font-weight="600">{label}</text>'
            f'<text x="{_LEFT + 10}" y="{top + 35}" font-size="11" fill="#4b5563">{stream}</text>'
        )
        node_id = escape(str(node.get("id", "")))
        if role == "event" or not node.get("stream_name"):
            parts.append(f'<g class="{role}" data-id="{node_id}">{box}</g>')
        else:
            parts.append(
                f'<a class="{role}" data-id="{node_id}" href="/events/{node_id}">{box}</a>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _arrow(source: int, target: int) -> str:
    x = _LEFT + _WIDTH // 2 + (0 if target - source == 1 else 12 * (target - source))
    start = source * (_HEIGHT + _GAP) + _HEIGHT
    end = target * (_HEIGHT + _GAP)
    return (
        f'<line x1="{x}" y1="{start}" x2="{x}" y2="{end - 2}" stroke="#6b7280" '
        'stroke-width="1.5" marker-end="url(#arrow)"/>'
    )
