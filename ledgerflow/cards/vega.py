"""Simple Vega-Lite specs drawn as static SVG, so a stored card needs no JavaScript bundle
and no network: one mark (`bar`, `line`, `point`, `area`) over inline `data.values`, with
`x` and `y` fields. Anything else returns None (the card shows the spec instead)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
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
    chart = _simple_chart(spec)
    if chart is None:
        return None
    mark, rows, xf, yf = chart
    ys = [float(r[yf]) for r in rows]
    y0, y1 = min(0.0, min(ys)), max(0.0, max(ys))
    if y1 == y0:
        y1 = y0 + 1
    yticks = nice_ticks(y0, y1)  # round numbers (0, 0.2, 0.4, ...), the axis widened to them
    y0, y1 = yticks[0], yticks[-1]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sy(v: float) -> float:
        return TOP + ph - (v - y0) / (y1 - y0) * ph

    xs_num = [_number(r.get(xf)) for r in rows]
    categorical = mark == "bar" or any(x is None for x in xs_num)
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
    parts += _marks(mark, xpos, ys, sy, pw)
    parts += _x_labels(categorical, xpos, labels)
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


def _simple_chart(spec: Any) -> tuple[str, list[dict[str, Any]], str, str] | None:
    """(mark, rows, x field, y field) of a spec this module can draw: a bar, line, point or
    area mark over inline values (at most 5,000 rows with a numeric y); else None."""
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
    return mark, rows, xf, yf


_COLOUR = "#4c78a8"


def _marks(mark: str, xpos: list[float], ys: list[float], sy: Callable[[float], float],
           pw: float) -> list[str]:  # fmt: skip
    """The bars, points, area or line of the chart."""
    if mark == "bar":
        bw = max(1.0, pw / len(xpos) * 0.8)
        bars = []
        for x, y in zip(xpos, ys):
            top, bottom = min(sy(y), sy(0)), max(sy(y), sy(0))
            bars.append(
                f'<rect x="{x - bw / 2:.1f}" y="{top:.1f}" width="{bw:.1f}" '
                f'height="{bottom - top:.1f}" fill="{_COLOUR}"/>'
            )
        return bars
    if mark == "point":
        return [
            f'<circle cx="{x:.1f}" cy="{sy(y):.1f}" r="3" fill="{_COLOUR}"/>'
            for x, y in zip(xpos, ys)
        ]
    points = " ".join(f"{x:.1f},{sy(y):.1f}" for x, y in zip(xpos, ys))
    if mark == "area":
        points = f"{xpos[0]:.1f},{sy(0):.1f} {points} {xpos[-1]:.1f},{sy(0):.1f}"
        return [f'<polygon points="{points}" fill="{_COLOUR}" opacity="0.6"/>']
    return [f'<polyline points="{points}" fill="none" stroke="{_COLOUR}" stroke-width="2"/>']


def _x_labels(categorical: bool, xpos: list[float], labels: list[str]) -> list[str]:
    """Under the x axis: each category (up to 30 of them), or the range's two ends."""
    if categorical:
        if len(labels) > 30:
            return []
        return [
            f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle" font-size="10">'
            f"{html.escape(label[:12])}</text>"
            for x, label in zip(xpos, labels)
        ]
    return [
        f'<text x="{LEFT}" y="{H - BOTTOM + 14}" font-size="10">{html.escape(labels[0])}</text>',
        f'<text x="{W - RIGHT}" y="{H - BOTTOM + 14}" text-anchor="end" '
        f'font-size="10">{html.escape(labels[1])}</text>',
    ]


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
