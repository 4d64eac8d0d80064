"""The page frame of `ledgerflow ui`: inline styles, the one script file it loads
(ui/static/ui.js, from the app itself: nothing is fetched from anywhere else), and small HTML
helpers. Every value from the ledger goes through `esc` (cells of `table` are HTML already:
their callers escape)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote, urlencode

CSS = """
*{box-sizing:border-box}body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;
margin:0;color:#222;background:#f6f7f9;font-size:14px}
header{background:#1f2937;color:#fff;padding:8px 20px;display:flex;gap:18px;align-items:center}
header a{color:#e5e7eb;text-decoration:none}header a.brand{font-weight:700;color:#fff}
header form{margin-left:auto}header input{padding:4px 8px;border-radius:4px;border:0;width:260px}
main{padding:16px 24px;max-width:1400px;margin:0 auto}
h1{font-size:20px;margin:4px 0 10px}h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right}a{color:#1d4ed8}
pre{background:#fff;border:1px solid #e0e0e0;padding:8px;overflow:auto;max-height:480px;
white-space:pre-wrap;word-break:break-word;font-size:12px}td pre{margin:0;padding:2px 4px;max-height:140px}
.status{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.muted{color:#6b7280}.card-frame{width:100%;height:640px;border:1px solid #ddd;background:#fff}
.filters input,.filters select{padding:3px 6px}.pager{margin:10px 0}
.warn{background:#fff7ed;border:1px solid #fdba74;padding:8px;margin:8px 0}
.err{background:#ffebee;border:1px solid #e57373;padding:8px;margin:8px 0}
textarea{width:100%;font-family:monospace;font-size:13px}.flex{display:flex;gap:24px;
flex-wrap:wrap;align-items:flex-start}svg text{font-family:sans-serif}
mark{background:#fde68a;padding:0 1px}table.struct{margin:2px 0}table.struct th{font-weight:600}
.summary td{white-space:nowrap}.kv td:first-child{font-weight:600;white-space:nowrap}
"""

# The UI's one script is a file served as /static/ui.js (see ui/static/ui.js): the pages' CSP
# allows script from this server only, never inline, so no text from a ledger can run.
SCRIPT_PATH = "/static/ui.js"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def path(*parts: Any, **query: Any) -> str:
    """A URL path from parts (each quoted) and query parameters (None ones left out)."""
    url = "/" + "/".join(quote(str(p), safe="") for p in parts)
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return url + ("?" + urlencode(params) if params else "")


def link(text: Any, href: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def badge(status: str | None) -> str:
    from ..cards.dag import STATUS_COLOURS

    colour = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
    return f'<span class="status" style="background:{colour}">{esc(status or "none")}</span>'


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table; cells are HTML already (escape text with esc())."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f'<table class="{cls}">{thead}<tbody>{body}</tbody></table>'


def frame(title: str, body: str, ledger_name: str, search: str = "") -> str:
    """A whole page: header with navigation and the search box, then the body."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · ledgerflow</title><style>{CSS}</style></head><body>"
        '<header><a class="brand" href="/">ledgerflow</a><a href="/">Runs</a>'
        '<a href="/diff">Diff</a><a href="/sql">SQL</a>'
        f'<span class="muted">{esc(ledger_name)}</span>'
        '<form action="/search" method="get"><input type="search" name="q" '
        f'placeholder="Search artifacts, logs, errors" value="{esc(search)}" aria-label="search"></form>'
        f'</header><main>{body}</main><script src="{SCRIPT_PATH}"></script></body></html>\n'
    )
