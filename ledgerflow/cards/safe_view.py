"""Showing stored card HTML without letting it run: notebooks and `card view`.

A card comes from a ledger, and a ledger may come from someone else (PRODUCT.md: nothing
in a received ledger runs, not even as script in a notebook or a browser). Card HTML is
therefore never opened or embedded as it is: it goes into an `<iframe sandbox="">` whose
`srcdoc` holds it, escaped. An empty `sandbox` gives the frame an opaque origin and no
script at all (never `allow-scripts` together with `allow-same-origin`, which would let a
script lift the sandbox). `card view` writes a small page holding that frame, under a
Content-Security-Policy that allows no script and no network at all; an about:srcdoc frame
inherits that policy, so a card cannot even load a tracking image from elsewhere.

Our own cards need none of this to look right: they are static HTML with inline styles and
`data:` images (cards/render.py).
"""

from __future__ import annotations

import html

# No script, no network: styles and images only from the page itself.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
       "frame-src 'self'; base-uri 'none'; form-action 'none'")  # fmt: skip
SANDBOX = ""  # the strictest sandbox: no allow-* keyword at all


def sandboxed_frame(card_html: str, height: str = "600px", title: str = "card") -> str:
    """An iframe showing `card_html` with script and same-origin access taken away."""
    return (
        f'<iframe sandbox="{SANDBOX}" title="{html.escape(title, quote=True)}" '
        f'referrerpolicy="no-referrer" srcdoc="{html.escape(card_html, quote=True)}" '
        f'style="width:100%;height:{height};border:1px solid #ddd"></iframe>'
    )


def view_page(card_html: str, title: str) -> str:
    """A complete page for `card view`: the card in a sandboxed frame, under a CSP that
    forbids script."""
    frame = sandboxed_frame(card_html, height="100%", title=title)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="referrer" content="no-referrer"><title>{html.escape(title)}</title>'
        "<style>html,body{margin:0;height:100%}iframe{display:block;border:0 !important}"
        "</style></head>"
        f"<body>{frame}</body></html>\n"
    )
