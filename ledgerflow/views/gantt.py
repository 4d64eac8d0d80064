"""A run's tasks on a time line (Gantt chart), as SVG: one row per task of a narrow step and
one row per wide step (its span, task count and the spread of its task durations), in graph
order, each bar coloured by status and linked to its page. Wide steps are summarised so a
10,000-task foreach draws one row, not 10,000."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..cards.dag import STATUS_COLOURS
from ..clock import format_duration

ROW, LABEL_W, WIDTH, TOP = 16, 230, 1100, 22


def _t(iso: Any) -> float | None:
    if not iso or not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def gantt_svg(rows: list[dict[str, Any]], link: Callable[[dict[str, Any]], str]) -> str:
    """SVG of rows: each {label, status, start, end (ISO or None), tip, summary (bool)}."""
    if not rows:
        return '<p class="muted">No tasks yet.</p>'
    now = datetime.now(UTC).timestamp()
    spans = []
    for r in rows:
        start = _t(r["start"]) or now
        spans.append((start, max(_t(r["end"]) or now, start)))
    t0, t1 = min(s for s, _ in spans), max(e for _, e in spans)
    total = max(t1 - t0, 1e-3)
    plot_w = WIDTH - LABEL_W - 10
    height = TOP + ROW * len(rows) + 6
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lf-gantt" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" font-size="11">'
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = LABEL_W + frac * plot_w
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{height}" '
                   'stroke="#e5e7eb"/>')  # fmt: skip
        anchor = "end" if frac == 1 else "start"
        out.append(f'<text x="{x:.1f}" y="12" fill="#6b7280" text-anchor="{anchor}">'
                   f"+{html.escape(format_duration(frac * total))}</text>")  # fmt: skip
    for i, (row, (start, end)) in enumerate(zip(rows, spans)):
        y = TOP + i * ROW
        x = LABEL_W + (start - t0) / total * plot_w
        w = max((end - start) / total * plot_w, 2)
        colour = STATUS_COLOURS.get(row["status"], STATUS_COLOURS[None])
        cls = "lf-step-bar" if row.get("summary") else "lf-bar"
        label = str(row["label"])
        label = label if len(label) <= 38 else label[:37] + "…"
        weight = ' font-weight="bold"' if row.get("summary") else ""
        opacity = ' opacity="0.75"' if row.get("summary") else ""
        out.append(
            f'<a href="{html.escape(link(row))}"><g class="{cls}">'
            f"<title>{html.escape(str(row['tip']))}</title>"
            f'<text x="4" y="{y + 11}"{weight}>{html.escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW - 4}" rx="2" '
            f'fill="{colour}"{opacity}/></g></a>'
        )
    out.append("</svg>")
    return "".join(out)
