"""Simple Vega-Lite specs drawn as static SVG, so a stored card needs no JavaScript bundle
and no network: one mark (`bar`, `line`, `point`, `area`) over inline `data.values`, with
`x` and `y` fields. Anything else returns None (the card shows the spec instead)."""

from __future__ import annotations

import html
import math
from typing import Any

W, H, LEFT, BOTTOM, TOP, RIGHT = 480, 260, 56, 40, 24, 16


def _field(encoding: dict[str, Any], channel: str) -> str | None:
    enc = encoding.get(channel)
    return enc.get("field") if isinstance(enc, dict) else None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def vega_to_svg(spec: Any) -> str | None:
    """An SVG drawing of a simple Vega-Lite spec, or None when the spec is not one."""
    if not isinstance(spec, dict):
        return None
    mark = spec.get("mark")
    mark = mark.get("type") if isinstance(mark, dict) else mark
    values = (spec.get("data") or {}).get("values") if isinstance(spec.get("data"), dict) else None
    encoding = spec.get("encoding") or {}
    if mark not in ("bar", "line", "point", "area") or not isinstance(values, list):
        return None
    xf, yf = _field(encoding, "x"), _field(encoding, "y")
    if not xf or not yf:
        return None
    rows = [r for r in values if isinstance(r, dict) and _number(r.get(yf)) is not None]
    if not rows or len(rows) > 5000:
        return None
    xs_num = [_number(r.get(xf)) for r in rows]
    categorical = mark == "bar" or any(x is None for x in xs_num)
    ys = [float(r[yf]) for r in rows]
    y0, y1 = min(0.0, min(ys)), max(0.0, max(ys))
    if y1 == y0:
        y1 = y0 + 1
    yticks = nice_ticks(y0, y1)  # round numbers (0, 0.2, 0.4, ...), the axis widened to them
    y0, y1 = yticks[0], yticks[-1]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sy(v: float) -> float:
        return TOP + ph - (v - y0) / (y1 - y0) * ph

    if categorical:
        labels = [str(r.get(xf)) for r in rows]
        step = pw / len(rows)
        xpos = [LEFT + step * (i + 0.5) for i in range(len(rows))]
    else:
        nums = [x for x in xs_num if x is not None]
        x0, x1 = min(nums), max(nums)
        span = (x1 - x0) or 1.0
        xpos = [LEFT + ((x or 0) - x0) / span * pw for x in xs_num]
        order = sorted(range(len(rows)), key=lambda i: xpos[i])
        xpos, ys = [xpos[i] for i in order], [ys[i] for i in order]
        labels = [f"{x0:g}", f"{x1:g}"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lf-vega" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img">'
    ]
    title = spec.get("title")
    if isinstance(title, str):
        parts.append(
            f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">'
            f"{html.escape(title)}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{sy(0):.1f}" x2="{W - RIGHT}" y2="{sy(0):.1f}" stroke="#888"/>'
    )
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="#888"/>')
    for v in yticks:
        parts.append(
            f'<text x="{LEFT - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" '
            f'font-size="10" class="lf-tick">{v:g}</text>'
        )
    colour = "#4c78a8"
    if mark == "bar":
        bw = max(1.0, pw / len(rows) * 0.8)
        for x, y in zip(xpos, ys):
            top, bottom = min(sy(y), sy(0)), max(sy(y), sy(0))
            parts.append(
                f'<rect x="{x - bw / 2:.1f}" y="{top:.1f}" width="{bw:.1f}" '
                f'height="{bottom - top:.1f}" fill="{colour}"/>'
            )
    elif mark == "point":
        parts += [
            f'<circle cx="{x:.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>'
            for x, y in zip(xpos, ys)
        ]
    else:
        points = " ".join(f"{x:.1f},{sy(y):.1f}" for x, y in zip(xpos, ys))
        if mark == "area":
            points = f"{xpos[0]:.1f},{sy(0):.1f} {points} {xpos[-1]:.1f},{sy(0):.1f}"
            parts.append(f'<polygon points="{points}" fill="{colour}" opacity="0.6"/>')
        else:
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
    if categorical and len(labels) <= 30:
        parts += [
            f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle" font-size="10">'
            f"{html.escape(label[:12])}</text>"
            for x, label in zip(xpos, labels)
        ]
    elif not categorical:
        parts.append(
            f'<text x="{LEFT}" y="{H - BOTTOM + 14}" font-size="10">{html.escape(labels[0])}</text>'
        )
        parts.append(
            f'<text x="{W - RIGHT}" y="{H - BOTTOM + 14}" text-anchor="end" '
            f'font-size="10">{html.escape(labels[1])}</text>'
        )
    parts.append(
        f'<text x="{LEFT + pw / 2}" y="{H - 6}" text-anchor="middle" font-size="11">'
        f"{html.escape(str(xf))}</text>"
    )
    parts.append(
        f'<text x="12" y="{TOP + ph / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + ph / 2})">{html.escape(str(yf))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` evenly spaced round ticks (steps of 1, 2, 2.5 or 5 times a power of
    ten) covering lo..hi: 0..0.9755 gives 0, 0.2, ..., 1 rather than 0, 0.4878, 0.9755."""
    if not hi > lo:
        return [lo, lo + 1]
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    n = round((end - start) / step)
    return [round(start + i * step, 12) + 0.0 for i in range(n + 1)]
