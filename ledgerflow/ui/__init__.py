"""`ledgerflow ui`: browse, search and compare the runs of a ledger in a web browser.

from ledgerflow.ui import serve
serve("ledgerflow.db")          # http://127.0.0.1:8484/ until Ctrl-C
"""

from __future__ import annotations

from .server import DEFAULT_PORT, make_server, serve

__all__ = ["DEFAULT_PORT", "make_server", "serve"]
