"""A run's tasks on a time line (Gantt chart), as SVG: one row per task, grouped by step in
graph order, each bar coloured by the task's status and linked to its page."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..cards.dag import STATUS_COLOURS

ROW, LABEL_W, WIDTH, TOP = 16, 210, 1100, 22


def _t(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def gantt_svg(tasks: list[dict[str, Any]], step_order: list[str],
              link: Callable[[dict[str, Any]], str]) -> str:  # fmt: skip
    """SVG of tasks (dicts with step, task_id, status, started_at, finished_at)."""
    if not tasks:
        return '<p class="muted">No tasks yet.</p>'
    rank = {s: i for i, s in enumerate(step_order)}
    tasks = sorted(tasks, key=lambda t: (rank.get(t["step"], len(rank)), t["started_at"] or ""))
    now = datetime.now(UTC).timestamp()
    spans = [(_t(t["started_at"]) or now, _t(t["finished_at"]) or now) for t in tasks]
    t0, t1 = min(s for s, _ in spans), max(e for _, e in spans)
    total = max(t1 - t0, 1e-3)
    plot_w = WIDTH - LABEL_W - 10
    height = TOP + ROW * len(tasks) + 6
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lf-gantt" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" font-size="11">'
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = LABEL_W + frac * plot_w
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{height}" stroke="#e5e7eb"/>'
        )
        anchor = "end" if frac == 1 else "start"
        out.append(
            f'<text x="{x:.1f}" y="12" fill="#6b7280" text-anchor="{anchor}">'
            f"+{frac * total:.3g}s</text>"
        )
    for i, (task, (start, end)) in enumerate(zip(tasks, spans)):
        y = TOP + i * ROW
        x = LABEL_W + (start - t0) / total * plot_w
        w = max((end - start) / total * plot_w, 2)
        colour = STATUS_COLOURS.get(task["status"], STATUS_COLOURS[None])
        label = html.escape(f"{task['step']}/{task['task_id']}")
        tip = html.escape(f"{task['step']}/{task['task_id']} {task['status']} {end - start:.3f}s")
        out.append(
            f'<a href="{html.escape(link(task))}"><g class="lf-bar">'
            f"<title>{tip}</title>"
            f'<text x="4" y="{y + 11}">{label[:40]}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW - 4}" rx="2" '
            f'fill="{colour}"/></g></a>'
        )
    out.append("</svg>")
    return "".join(out)
