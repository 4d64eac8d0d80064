"""`ledgerflow ui`: a local, read-only web app over one ledger.

Why the standard library's `ThreadingHTTPServer`, not starlette + uvicorn: the app serves
one person on their own machine, reads one SQLite file, and has a dozen routes with no
websockets or async I/O to gain from. The standard library does that with no dependency
to install, keep secure or import (~0 ms start-up instead of ~150 ms), and a thread per
request suits SQLite's per-thread read connections. Live views poll a JSON route.

Safety: the ledger is opened read-only (`mode=ro`): browsing never writes to it, nor marks
runs crashed. Requests must name this server as their Host (no DNS-rebinding reads from
web pages), every value is escaped, every page has a Content-Security-Policy that allows
nothing from elsewhere and no inline script (the UI's own script is static/ui.js), and
cards are served under a policy that allows no script and no fetch at all. A ledger's text
that is not valid UTF-8 is shown with replacement characters, not a 500.
"""

from __future__ import annotations

import json
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..views.layout import esc, frame
from . import pages, tools

# Script only from this server (static/ui.js), never inline: text from a ledger that
# escaped into a page still could not run. Inline style stays (badges' colours).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; frame-src 'self'; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'"
)
CARD_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
DEFAULT_PORT = 8484


class App:
    """The ledger being browsed (read-only) and the server's settings."""

    def __init__(self, path: str | Path, trust: bool = False):
        from ..ledger import Ledger
        from ..trust_store import trust as trust_ledger

        self.path = Path(path).absolute()
        self.ledger = Ledger.open(self.path, readonly=True)
        if trust:
            trust_ledger(self.path)
        self.allowed_hosts: set[str] = set()


def _one(query: dict[str, list[str]], key: str) -> str:
    return (query.get(key) or [""])[0]


class Handler(BaseHTTPRequestHandler):
    server_version = "ledgerflow-ui"
    app: App  # set on the subclass made by make_server
    quiet = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    # -- dispatch
    def do_GET(self) -> None:
        self._handle(post=False)

    def do_POST(self) -> None:
        self._handle(post=True)

    def _handle(self, post: bool) -> None:
        if not self._host_ok():
            self._send(403, "text/plain", b"this server answers only to its own address\n")
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        if post:
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            query.update(parse_qs(self.rfile.read(length).decode("utf-8", "replace")))
        # Text columns of a received file may hold bytes that are not UTF-8: show them with
        # U+FFFD instead of failing the page (this thread's read connection).
        self.app.ledger.conn.text_factory = _lenient_text
        try:
            self._route(parts, query, post)
        except pages.NotFound as e:
            self._html(
                404, frame("Not found", f"<h1>Not found</h1><p>{esc(e)}</p>", self.app.path.name)
            )
        except Exception as e:  # noqa: BLE001 - a bug answers 500, the server goes on
            traceback.print_exc(file=sys.stderr)
            self._html(
                500,
                frame(
                    "Error",
                    f"<h1>Something went wrong</h1><pre>{esc(type(e).__name__)}: {esc(e)}</pre>",
                    self.app.path.name,
                ),
            )

    def _route(self, parts: list[str], query: dict[str, list[str]], post: bool) -> None:
        app, kind, rest = self.app, (parts[0] if parts else ""), parts[1:]
        if post and not (kind == "artifact" and len(rest) == 5):
            raise pages.NotFound("nothing here takes a form")
        if kind == "" and not rest:
            self._html(
                200,
                pages.runs_page(
                    app,
                    _one(query, "flow") or None,
                    _one(query, "status") or None,
                    _one(query, "tag") or None,
                    _one(query, "after") or None,
                ),
            )
        elif kind == "run" and len(rest) == 2:
            flow, run_id = rest
            self._html(200, pages.run_page(app, flow, run_id, page=_int(_one(query, "page"), 1)))
        elif kind == "step" and len(rest) == 3:
            flow, run_id, step = rest
            self._html(200, pages.step_page(app, flow, run_id, step, _one(query, "after") or None))
        elif kind == "task" and len(rest) == 4:
            flow, run_id, step, task_id = rest
            attempt = _one(query, "attempt")
            self._html(200, pages.task_page(app, flow, run_id, step, task_id,
                                            _int(attempt, 0) if attempt else None,
                                            _one(query, "find"), _one(query, "stream")))  # fmt: skip
        elif kind == "artifact" and len(rest) == 5:
            load = post and _one(query, "load") == "1"
            flow, run_id, step, task_id, name = rest
            self._html(200, pages.artifact_page(app, flow, run_id, step, task_id, name, load))
        elif kind == "card" and len(rest) == 1 and rest[0].isdigit():
            self._card(int(rest[0]))
        elif kind == "search" and not rest:
            self._html(200, tools.search_page(app, _one(query, "q"), _one(query, "flow") or None,
                                              _one(query, "kind") or None,
                                              _one(query, "name") or None,
                                              _int(_one(query, "page"), 1)))  # fmt: skip
        elif kind == "diff" and not rest:
            self._html(200, tools.diff_page(app, _one(query, "a"), _one(query, "b")))
        elif kind == "sql" and not rest:
            self._html(200, tools.sql_page(app, _one(query, "q")))
        elif kind == "api" and rest[:1] == ["logs"] and len(rest) == 2 and rest[1].isdigit():
            offsets = {s: _int(_one(query, s), 0) for s in ("stdout", "stderr")}
            self._json(pages.logs_json(app, int(rest[1]), offsets))
        elif kind == "log" and len(rest) == 2 and rest[0].isdigit():
            self._html(200, pages.log_viewer(app, int(rest[0]), rest[1],
                                             _int(_one(query, "offset"), -1)))  # fmt: skip
        elif kind == "download" and len(rest) == 2 and rest[0].isdigit():
            self._download(int(rest[0]), rest[1])
        elif kind == "static" and rest == ["ui.js"]:
            self._send(200, "text/javascript; charset=utf-8", _script(), PAGE_CSP)
        elif kind == "api" and rest[:1] == ["run"] and len(rest) == 3:
            self._json(pages.run_status_json(app, rest[1], rest[2]))
        else:
            raise pages.NotFound(f"no page at {self.path}")

    def _download(self, task_pk: int, stream: str) -> None:
        """The whole of a log stream as a text file, written out a piece at a time."""
        from ..views.logview import log_chunks

        where = pages.log_owner(self.app, task_pk, stream)
        pieces = (p.encode("utf-8", "replace") for p in log_chunks(self.app.ledger,
                                                                   task_pk, stream))  # fmt: skip
        name = "-".join(where) + f"-{stream}.txt"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Disposition", f'attachment; filename="{safe}"')
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CARD_CSP)
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(piece)
        self.close_connection = True

    def _card(self, card_pk: int) -> None:
        from ..cards.storage import read_card_html
        from ..views import queries

        row = queries.card(self.app.ledger, card_pk)
        if row is None:
            raise pages.NotFound(f"no card with id {card_pk}")
        if row["sha"] is None:
            from ..cards.render import error_card

            html = error_card(f"card {card_pk}", row["type"], row["error"] or "")
        else:
            try:
                html = read_card_html(self.app.ledger, row["sha"])
            except ValueError as e:  # not text: a tampered ledger; decode nothing
                from ..cards.render import error_card

                html = error_card(f"card {card_pk}", row["type"], str(e))
        self._send(200, "text/html; charset=utf-8", html.encode("utf-8"), CARD_CSP)

    # -- responses
    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        return host in self.app.allowed_hosts

    def _html(self, code: int, html: str) -> None:
        self._send(code, "text/html; charset=utf-8", html.encode("utf-8"), PAGE_CSP)

    def _json(self, doc: Any) -> None:
        self._send(200, "application/json", json.dumps(doc).encode("utf-8"), PAGE_CSP)

    def _send(self, code: int, ctype: str, data: bytes, csp: str | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if csp:
            self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        self.wfile.write(data)


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


_SCRIPT: bytes | None = None


def _script() -> bytes:
    global _SCRIPT
    if _SCRIPT is None:
        from importlib.resources import files

        _SCRIPT = files("ledgerflow.ui").joinpath("static/ui.js").read_bytes()
    return _SCRIPT


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a browser's open connections
    url = ""
    ledger_path = Path()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve, listed in the registry meanwhile (notebook views link to the pages)."""
        from ..views.registry import register, unregister

        entry = register(self.ledger_path, self.url, self.server_address[1])
        try:
            super().serve_forever(poll_interval)
        finally:
            unregister(entry)


def make_server(path: str | Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                trust: bool = False, quiet: bool = True) -> tuple[_Server, str]:  # fmt: skip
    """A server for the ledger at `path` (not started) and its URL. Port 0 picks a free one."""
    app = App(path, trust)
    handler = type("LedgerHandler", (Handler,), {"app": app, "quiet": quiet})
    server = _Server((host, port), handler)
    bound = server.server_address[1]
    shown = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    names = {shown, "localhost", "127.0.0.1", "[::1]", host}
    app.allowed_hosts = {f"{n}:{bound}" for n in names} | ({host} if bound == 80 else set())
    url_host = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    server.url, server.ledger_path = f"http://{url_host}:{bound}/", app.path
    return server, server.url


def serve(path: str | Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          trust: bool = False, quiet: bool = True) -> None:  # fmt: skip
    """Serve the ledger until Ctrl-C."""
    server, url = make_server(path, host, port, trust, quiet)
    print(f"ledgerflow ui: browsing {Path(path).absolute()} at {url} (Ctrl-C to stop)",
          flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    finally:
        server.server_close()
