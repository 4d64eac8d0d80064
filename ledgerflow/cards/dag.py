"""A flow's graph drawn as SVG: one box per step, in layers from `start` to `end`, each
coloured by the status of its tasks. Used by the default card and by `ledgerflow ui`.
Pure: takes the run's `graph_info` (as stored) and a status per step."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

STATUS_COLOURS = {
    "succeeded": "#2e7d32", "failed": "#c62828", "caught": "#ef6c00", "running": "#1565c0",
    "crashed": "#6a1b1a", "interrupted": "#6a1b1a", "mixed": "#ef6c00", None: "#9e9e9e",
}  # fmt: skip
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 132, 36, 28, 34, 12


def step_status(statuses: list[str]) -> str | None:
    """One status for a step from its tasks' statuses (None: no task ran)."""
    found = set(statuses)
    for worst in ("failed", "crashed", "interrupted", "running"):
        if worst in found:
            return worst
    if found == {"succeeded"}:
        return "succeeded"
    return "caught" if "caught" in found else ("mixed" if found else None)


def layers(graph_info: dict[str, Any]) -> list[list[str]]:
    """Steps grouped by their longest distance from the start (loops back are ignored)."""
    steps = graph_info.get("steps") or {}
    start = graph_info.get("start_step") or "start"
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:  # depth-first, post-order: a topological order reversed
        state[name] = 1
        for nxt in (steps.get(name) or {}).get("next") or []:
            if nxt in steps and state.get(nxt) is None:
                visit(nxt)
        state[name] = 2
        order.append(name)

    if start in steps:
        visit(start)
    for name in steps:  # steps unreachable from start still get drawn
        if name not in state:
            visit(name)
    position = {name: i for i, name in enumerate(reversed(order))}
    depth: dict[str, int] = {}
    for name in reversed(order):
        depth.setdefault(name, 0)
        for nxt in (steps.get(name) or {}).get("next") or []:
            if nxt in position and position[nxt] > position[name]:  # forward edges only
                depth[nxt] = max(depth.get(nxt, 0), depth[name] + 1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in reversed(order):
        grouped[depth[name]].append(name)
    return grouped


def dag_svg(graph_info: dict[str, Any], statuses: dict[str, str | None] | None = None,
            link: Callable[[str], str] | None = None) -> str:  # fmt: skip
    """The graph as an inline SVG element; `link(step)` makes each box a link."""
    statuses = statuses or {}
    steps = graph_info.get("steps") or {}
    rows = layers(graph_info)
    width = max((len(r) for r in rows), default=1) * (BOX_W + GAP_X) - GAP_X + 2 * PAD
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 2 * PAD
    centre: dict[str, tuple[float, float]] = {}
    for y, row in enumerate(rows):
        row_w = len(row) * (BOX_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for i, name in enumerate(row):
            centre[name] = (
                x0 + i * (BOX_W + GAP_X) + BOX_W / 2,
                PAD + y * (BOX_H + GAP_Y) + BOX_H / 2,
            )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lf-dag" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="flow graph">',
        '<defs><marker id="lf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker>'
        "</defs>",
    ]
    for name, info in steps.items():
        for nxt in (info or {}).get("next") or []:
            if name in centre and nxt in centre:
                (x1, y1), (x2, y2) = centre[name], centre[nxt]
                if y2 > y1:
                    out.append(
                        f'<line class="lf-edge" x1="{x1:.1f}" y1="{y1 + BOX_H / 2:.1f}" '
                        f'x2="{x2:.1f}" y2="{y2 - BOX_H / 2:.1f}" stroke="#777" '
                        'marker-end="url(#lf-arrow)"/>'
                    )
                else:  # a loop back (switch): a curve on the side
                    xr = max(x1, x2) + BOX_W / 2 + 14
                    out.append(
                        f'<path class="lf-edge" d="M{x1 + BOX_W / 2:.1f},{y1:.1f} '
                        f"C{xr:.1f},{y1:.1f} {xr:.1f},{y2:.1f} {x2 + BOX_W / 2:.1f},"
                        f'{y2:.1f}" fill="none" stroke="#777" stroke-dasharray="4 3" '
                        'marker-end="url(#lf-arrow)"/>'
                    )
    for name, (cx, cy) in centre.items():
        status = statuses.get(name)
        colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
        label = html.escape(name if len(name) <= 18 else name[:17] + "…")
        title = html.escape(f"{name}: {status or 'not run'}")
        box = (
            f'<g class="lf-node" data-step="{html.escape(name)}" '
            f'data-status="{html.escape(status or "none")}"><title>{title}</title>'
            f'<rect x="{cx - BOX_W / 2:.1f}" y="{cy - BOX_H / 2:.1f}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="6" fill="{colour}"/>'
            f'<text x="{cx:.1f}" y="{cy + 5:.1f}" text-anchor="middle" fill="#fff" '
            f'font-family="sans-serif" font-size="13">{label}</text></g>'
        )
        if link is not None:
            box = f'<a href="{html.escape(link(name))}">{box}</a>'
        out.append(box)
    out.append("</svg>")
    return "".join(out)
