"""A run's stored graph (`graph_info`) as `ledgerflow ui` and the notebook views draw it.

Owned by the UI. The graph comes from the ledger, which may be someone else's file: it is
checked here (`clean_graph`: a dict of steps, each with a list of next step names) and every
problem is reported, never raised, so a malformed or huge graph gives a page that says what
is wrong instead of a 500. Layering is iterative (a 20,000-step chain does not recurse), and
a graph of more than MAX_DRAWN steps is listed, not drawn.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from ..cards.dag import STATUS_COLOURS

MAX_DRAWN = 200  # steps drawn as boxes; larger graphs are listed in the Steps table only
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 42, 26, 32, 12


def clean_graph(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """(graph, problems): `raw` (decoded graph_info) reduced to {"start_step", "steps":
    {name: {"next": [names], "type": str, "foreach": str|None}}}, and one line per problem."""
    problems: list[str] = []
    if raw in (None, "", {}):
        return {"start_step": "start", "steps": {}}, problems
    if not isinstance(raw, dict):
        return {"start_step": "start", "steps": {}}, [
            f"graph_info is a JSON {type(raw).__name__}, not an object; the graph is not drawn"
        ]
    steps_in = raw.get("steps")
    if not isinstance(steps_in, dict):
        problems.append("graph_info has no 'steps' object; the graph is not drawn")
        steps_in = {}
    steps: dict[str, dict[str, Any]] = {}
    for name, info in steps_in.items():
        info = info if isinstance(info, dict) else {}
        nxt = info.get("next", [])
        if not isinstance(nxt, list) or not all(isinstance(n, str) for n in nxt):
            problems.append(f"step {name!r} has a 'next' that is not a list of step names")
            nxt = [n for n in nxt if isinstance(n, str)] if isinstance(nxt, list) else []
        kind = info.get("type")
        foreach = info.get("foreach_artifact")
        steps[str(name)] = {
            "next": nxt,
            "type": kind if isinstance(kind, str) else "",
            "foreach": foreach if isinstance(foreach, str) else None,
        }
    start = raw.get("start_step", "start")
    if not isinstance(start, str):
        problems.append("graph_info's 'start_step' is not a step name")
        start = "start"
    return {"start_step": start, "steps": steps}, problems


def layers(graph: dict[str, Any]) -> list[list[str]]:
    """Steps grouped by their longest distance from the start (edges back ignored), without
    recursion: a depth-first post-order by an explicit stack."""
    steps: dict[str, dict[str, Any]] = graph["steps"]
    order: list[str] = []
    state: dict[str, int] = {}
    roots = [graph["start_step"]] if graph["start_step"] in steps else []
    for root in [*roots, *steps]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(steps[root]["next"]))]
        while stack:
            name, children = stack[-1]
            for nxt in children:
                if nxt in steps and nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(steps[nxt]["next"])))
                    break
            else:
                stack.pop()
                state[name] = 2
                order.append(name)
    order.reverse()
    position = {name: i for i, name in enumerate(order)}
    depth: dict[str, int] = {}
    for name in order:
        depth.setdefault(name, 0)
        for nxt in steps[name]["next"]:
            if nxt in position and position[nxt] > position[name]:
                depth[nxt] = max(depth.get(nxt, 0), depth[name] + 1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in order:
        grouped[depth[name]].append(name)
    return grouped


def step_order(graph: dict[str, Any], seen: list[str]) -> list[str]:
    """The graph's steps layer by layer, then steps that ran but are not in it."""
    order = [s for layer in layers(graph) for s in layer]
    known = set(order)
    return order + sorted(set(seen) - known)


def dag_svg(graph: dict[str, Any], statuses: dict[str, str | None],
            counts: dict[str, int], link: Callable[[str], str] | None = None) -> str:  # fmt: skip
    """The graph as SVG: a box per step coloured by status, labelled with its task count
    when a step ran more than one task (a foreach's width: 'fan ×200')."""
    steps = graph["steps"]
    if len(steps) > MAX_DRAWN:
        return (f'<p class="muted">The graph has {len(steps):,} steps, too many to draw; '
                "they are listed below.</p>")  # fmt: skip
    if not steps:
        return '<p class="muted">No graph stored.</p>'
    rows = layers(graph)
    width = max(len(r) for r in rows) * (BOX_W + GAP_X) - GAP_X + 2 * PAD
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 2 * PAD
    centre: dict[str, tuple[float, float]] = {}
    for y, row in enumerate(rows):
        x0 = (width - (len(row) * (BOX_W + GAP_X) - GAP_X)) / 2
        for i, name in enumerate(row):
            centre[name] = (x0 + i * (BOX_W + GAP_X) + BOX_W / 2,
                            PAD + y * (BOX_H + GAP_Y) + BOX_H / 2)  # fmt: skip
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lf-dag" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="flow graph"><defs><marker id="lf-arrow" viewBox="0 0 10 10" refX="9" '
        'refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#777"/></marker></defs>'
    ]
    for name, info in steps.items():
        for nxt in info["next"]:
            if name not in centre or nxt not in centre:
                continue
            (x1, y1), (x2, y2) = centre[name], centre[nxt]
            if y2 > y1:
                out.append(f'<line class="lf-edge" x1="{x1:.1f}" y1="{y1 + BOX_H / 2:.1f}" '
                           f'x2="{x2:.1f}" y2="{y2 - BOX_H / 2:.1f}" stroke="#777" '
                           'marker-end="url(#lf-arrow)"/>')  # fmt: skip
            else:  # a loop back (switch): a dashed curve on the side
                xr = max(x1, x2) + BOX_W / 2 + 14
                out.append(f'<path class="lf-edge" d="M{x1 + BOX_W / 2:.1f},{y1:.1f} '
                           f"C{xr:.1f},{y1:.1f} {xr:.1f},{y2:.1f} {x2 + BOX_W / 2:.1f},"
                           f'{y2:.1f}" fill="none" stroke="#777" stroke-dasharray="4 3" '
                           'marker-end="url(#lf-arrow)"/>')  # fmt: skip
    for name, (cx, cy) in centre.items():
        status = statuses.get(name)
        n = counts.get(name, 0)
        colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
        label = name if len(name) <= 16 else name[:15] + "…"
        sub = f"×{n:,} tasks" if n > 1 else ("foreach" if steps[name]["foreach"] else "")
        title = f"{name}: {status or 'not run'}, {n:,} task{'s' if n != 1 else ''}"
        text_y = cy + (0 if sub else 5)
        box = (
            f'<g class="lf-node" data-step="{html.escape(name)}" '
            f'data-status="{html.escape(status or "none")}" data-tasks="{n}">'
            f"<title>{html.escape(title)}</title>"
            f'<rect x="{cx - BOX_W / 2:.1f}" y="{cy - BOX_H / 2:.1f}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="6" fill="{colour}"/>'
            f'<text x="{cx:.1f}" y="{text_y:.1f}" text-anchor="middle" fill="#fff" '
            f'font-size="13">{html.escape(label)}</text>'
            + (f'<text x="{cx:.1f}" y="{cy + 15:.1f}" text-anchor="middle" fill="#fff" '
               f'font-size="11" class="lf-width">{html.escape(sub)}</text>' if sub else "")
            + "</g>"
        )  # fmt: skip
        if link is not None:
            box = f'<a href="{html.escape(link(name))}">{box}</a>'
        out.append(box)
    out.append("</svg>")
    return "".join(out)
