"""Card types and the self-contained HTML page they render to.

`default` shows the task (status, timing), its parameters, its artifacts (the text
previews stored with them: never a user's `__repr__`), the flow's graph with this step
marked, and the components the step appended. `blank` shows only the components. `error`
is what a card that failed to render becomes (with `save_errors=True`, Metaflow's default).
Styles are inlined and there is no script: a card opens offline, from any file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .components import esc, render_safely
from .dag import dag_svg

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1000px;margin:0 auto;padding:16px 24px}
h1{font-size:20px;margin:8px 0 4px}h2{font-size:16px;margin:20px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}.lf-sub{color:#666;font-size:13px}
table.lf-table{border-collapse:collapse;margin:8px 0;font-size:13px;background:#fff}
.lf-table th,.lf-table td{border:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}.lf-table th{background:#f0f0f0}
pre{background:#f4f4f4;padding:8px;overflow:auto;font-size:12px;white-space:pre-wrap;
word-break:break-word}
.lf-error{border:1px solid #e57373;background:#ffebee;padding:8px;margin:8px 0}
.lf-error pre{background:transparent}.lf-note{color:#777;font-size:12px}
.lf-name{font-weight:600;margin-bottom:2px}.lf-image img{max-width:100%}
.lf-image figcaption{color:#555;font-size:13px}progress{width:240px}
.lf-status{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.lf-component{margin:10px 0}
"""


def page(title: str, body: str) -> str:
    """A complete HTML document with the card styles inlined."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")  # fmt: skip


def components_html(components: list[Any]) -> str:
    return "".join(f'<div class="lf-component">{render_safely(c)}</div>' for c in components)


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="lf-table"><tbody>{body}</tbody></table>'


def status_badge(status: str) -> str:
    from .dag import STATUS_COLOURS

    colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
    return f'<span class="lf-status" style="background:{colour}">{esc(status)}</span>'


def _shown_time(stored: Any) -> str:
    """A stored ISO time as the other screens show it (local, with its UTC offset); a value
    that is not one (a damaged row) as it is."""
    from ..clock import screen_time

    try:
        return screen_time(stored) if isinstance(stored, str) else str(stored or "")
    except ValueError:
        return str(stored)


def default_card(task: dict[str, Any], components: list[Any]) -> str:
    """The default card. `task` holds pathspec, status, attempt, started_at, finished_at,
    parameters and artifacts (lists of dicts with name, type, size, preview), graph_info."""
    info = [
        ("status", status_badge(task["status"])),
        ("attempt", esc(task["attempt"])),
        ("started", esc(_shown_time(task["started_at"]))),
        ("finished", esc(_shown_time(task["finished_at"]))),
    ]
    body = [f"<h1>{esc(task['pathspec'])}</h1>",
            '<div class="lf-sub">Task card (default)</div>',
            "<h2>Task</h2>", _kv_table(info)]  # fmt: skip
    if components:
        body += ["<h2>Components</h2>", components_html(components)]
    if task["parameters"]:
        body += ["<h2>Parameters</h2>", _artifact_table(task["parameters"])]
    body += ["<h2>Artifacts</h2>",
             _artifact_table(task["artifacts"]) if task["artifacts"]
             else '<p class="lf-note">This task stored no artifacts.</p>']  # fmt: skip
    if task.get("graph_info"):
        step = task["pathspec"].split("/")[2]
        body += ["<h2>DAG</h2>", dag_svg(task["graph_info"], {step: task["status"]})]
    return page(task["pathspec"], "".join(body))


def _artifact_table(rows: list[dict[str, Any]]) -> str:
    head = "<thead><tr><th>name</th><th>type</th><th>size</th><th>value</th></tr></thead>"
    body = "".join(
        f"<tr><td>{esc(r['name'])}</td><td>{esc(r['type'])}</td><td>{esc(r['size'])}</td>"
        f"<td><pre>{esc(r['preview'])}</pre></td></tr>"
        for r in rows
    )
    return f'<table class="lf-table">{head}<tbody>{body}</tbody></table>'


def blank_card(task: dict[str, Any], components: list[Any]) -> str:
    """Only the components the step appended."""
    return page(task["pathspec"], components_html(components))


def error_card(pathspec: str, card_type: str, error: str) -> str:
    """What a card that failed to render is replaced by."""
    body = (f"<h1>{esc(pathspec)}</h1><div class=\"lf-sub\">@card(type={esc(repr(card_type))}) "
            "failed to render; the task itself is not affected.</div>"
            f'<div class="lf-error"><pre>{esc(error)}</pre></div>')  # fmt: skip
    return page(f"card error: {pathspec}", body)


CARD_TYPES: dict[str, Callable[[dict[str, Any], list[Any]], str]] = {
    "default": default_card,
    "blank": blank_card,
}
