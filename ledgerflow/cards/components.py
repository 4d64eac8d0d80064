"""Card components with Metaflow's names: `Markdown`, `Table`, `Image`, `Artifact`,
`VegaChart`, `ProgressBar`, `Error`.

Each renders itself to an HTML fragment on the server side (in the task), so a stored card
is plain, self-contained HTML that needs no script and no network to be read. Everything a
user gives is escaped; a component that cannot render shows why instead of failing the card.
"""

from __future__ import annotations

import base64
import html
import json
import reprlib
import textwrap
from typing import Any

from .markdown import markdown_to_html
from .vega import vega_to_svg


def esc(value: Any) -> str:
    """HTML-escaped text of a value (str() for non-strings)."""
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


class MetaflowCardComponent:
    """Base of every component: `render()` returns an HTML fragment (str)."""

    type = "component"
    REALTIME_UPDATABLE = False
    component_id: str | None = None

    def render(self) -> str:  # pragma: no cover - every component overrides it
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Accepted (Metaflow updates live cards); the stored card shows the final state."""


class UserComponent(MetaflowCardComponent):
    """What users append to cards."""


def render_safely(component: Any) -> str:
    """A component's HTML, or an error box saying why it could not render."""
    try:
        if isinstance(component, MetaflowCardComponent):
            return component.render()
        if isinstance(component, str):
            return f"<p>{esc(component)}</p>"
        return Artifact(component).render()
    # A component's failure must not lose the rest of the card.
    except Exception as e:  # noqa: BLE001
        name = type(component).__name__
        return _error_box(f"{name} could not be rendered", f"{type(e).__name__}: {e}")


def _error_box(title: str, detail: str) -> str:
    return (f'<div class="lf-error"><strong>{esc(title)}</strong>'
            f"<pre>{esc(detail)}</pre></div>")  # fmt: skip


class Markdown(UserComponent):
    """A block of Markdown text (indented multi-line strings are dedented)."""

    type = "markdown"
    REALTIME_UPDATABLE = True

    def __init__(self, text: str | None = None):
        self._text = textwrap.dedent(text) if text is not None else None

    def update(self, text: str | None = None) -> None:
        self._text = textwrap.dedent(text) if text is not None else None

    def render(self) -> str:
        return f'<div class="lf-markdown">{markdown_to_html(self._text or "")}</div>'


class Table(UserComponent):
    """A table from a list of rows (cells may be components), with optional headers."""

    type = "table"
    MAX_ROWS = 1000  # like Metaflow's truncation of data frames: a card stays viewable

    def __init__(self, data: list[list[Any]] | None = None, headers: list[str] | None = None,
                 disable_updates: bool = False):  # fmt: skip
        self._data = [list(row) for row in (data or [])]
        self._headers = [str(h) for h in (headers or [])]

    @classmethod
    def from_dataframe(cls, dataframe: Any = None, truncate: bool = True) -> Table:
        """A table from a pandas DataFrame (the first 1000 rows when truncate)."""
        if type(dataframe).__name__ != "DataFrame" or not hasattr(dataframe, "itertuples"):
            return cls(headers=[f"Object type {type(dataframe).__name__} not supported"])
        frame = dataframe.head(cls.MAX_ROWS) if truncate else dataframe
        headers = [str(c) for c in frame.columns]
        if getattr(frame.index, "name", None) is not None or not _default_index(frame):
            headers = [str(frame.index.name or "")] + headers
            rows = [list(r) for r in frame.itertuples(index=True)]
        else:
            rows = [list(r) for r in frame.itertuples(index=False)]
        return cls(rows, headers)

    def render(self) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in self._headers)
        body = []
        for row in self._data[: self.MAX_ROWS]:
            body.append("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
        more = len(self._data) - self.MAX_ROWS
        note = f'<p class="lf-note">{more} more rows not shown</p>' if more > 0 else ""
        thead = f"<thead><tr>{head}</tr></thead>" if head else ""
        return f'<table class="lf-table">{thead}<tbody>{"".join(body)}</tbody></table>{note}'


def _default_index(frame: Any) -> bool:
    try:
        return list(frame.index) == list(range(len(frame)))
    except Exception:  # noqa: BLE001 - any odd index is not the default one
        return False


def _cell(value: Any) -> str:
    if isinstance(value, MetaflowCardComponent):
        return render_safely(value)
    if isinstance(value, float):
        return esc(f"{value:.6g}")
    return esc(value)


class Image(UserComponent):
    """An image from PNG/JPEG/GIF/SVG bytes, a matplotlib figure, or a PIL image."""

    type = "image"

    def __init__(self, src: bytes | str | None = None, label: str | None = None,
                 disable_updates: bool = True):  # fmt: skip
        self._label = label
        self._src: str | None = None
        self._error: str | None = None
        self._set(src)

    def _set(self, src: bytes | str | None) -> None:
        if src is None:
            self._src = None
        elif isinstance(src, (bytes, bytearray)):
            mime = _image_mime(bytes(src[:16]))
            if mime is None:
                self._error = "the bytes are not a PNG, JPEG, GIF, WebP or SVG image"
            else:
                self._src = f"data:{mime};base64,{base64.b64encode(bytes(src)).decode()}"
        elif isinstance(src, str) and src.startswith("data:image/"):
            self._src = src
        else:
            self._error = (
                f"Image needs bytes or a data:image/ URL, got {type(src).__name__}; "
                "use Image.from_matplotlib or Image.from_pil_image for figures"
            )

    def update(self, image: Any, label: str | None = None) -> None:
        self._error = None
        self._set(image)
        if label is not None:
            self._label = label

    @classmethod
    def from_pil_image(cls, pilimage: Any, label: str | None = None,
                       disable_updates: bool = False) -> Image:  # fmt: skip
        """An image from a PIL.Image (stored as PNG)."""
        import io

        try:
            buffer = io.BytesIO()
            pilimage.save(buffer, format="PNG")
            return cls(buffer.getvalue(), label)
        except Exception as e:  # noqa: BLE001 - a picture that fails shows as an error in the card
            img = cls(None, label)
            img._error = f"PIL image not parsable ({type(e).__name__}: {e})"
            return img

    @classmethod
    def from_matplotlib(cls, plot: Any, label: str | None = None,
                        disable_updates: bool = False) -> Image:  # fmt: skip
        """An image from a matplotlib Figure or Axes (stored as PNG)."""
        import io

        try:
            figure = plot.get_figure() if hasattr(plot, "get_figure") else plot
            figure = getattr(figure, "figure", figure)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
            return cls(buffer.getvalue(), label)
        except Exception as e:  # noqa: BLE001 - a figure that fails shows as an error in the card
            img = cls(None, label)
            img._error = f"matplotlib plot not parsable ({type(e).__name__}: {e})"
            return img

    def render(self) -> str:
        if self._error:
            return _error_box("Image could not be rendered", self._error)
        label = f"<figcaption>{esc(self._label)}</figcaption>" if self._label else ""
        if self._src is None:
            return f'<figure class="lf-image">{label}</figure>'
        alt = esc(self._label or "image")
        return f'<figure class="lf-image"><img src="{esc(self._src)}" alt="{alt}">{label}</figure>'


def _image_mime(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if head.startswith(b"GIF8"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "image/svg+xml"  # shown through <img>: its scripts never run
    return None


class Artifact(UserComponent):
    """Any Python object, pretty-printed (truncated with reprlib when compressed)."""

    type = "artifact"
    REALTIME_UPDATABLE = True

    def __init__(self, artifact: Any, name: str | None = None, compressed: bool = True):
        self._artifact, self._name, self._compressed = artifact, name, compressed

    def update(self, artifact: Any) -> None:
        self._artifact = artifact

    def render(self) -> str:
        short = reprlib.Repr()
        short.maxstring, short.maxother, short.maxlist, short.maxdict = 500, 200, 30, 30
        text = short.repr(self._artifact) if self._compressed else repr(self._artifact)
        name = f'<div class="lf-name">{esc(self._name)}</div>' if self._name else ""
        return f'<div class="lf-artifact">{name}<pre>{esc(text)}</pre></div>'


class VegaChart(UserComponent):
    """A Vega-Lite chart. Drawn as SVG when the task renders (marks bar, line, point, area
    with inline data); any other spec is shown as its JSON, since a card fetches nothing."""

    type = "vegaChart"
    REALTIME_UPDATABLE = True

    def __init__(self, spec: dict[str, Any], show_controls: bool = False):
        self._spec = spec

    def update(self, spec: dict[str, Any] | None = None) -> None:
        if spec is not None:
            self._spec = spec

    @classmethod
    def from_altair_chart(cls, altair_chart: Any) -> VegaChart:
        return cls(altair_chart.to_dict())

    def render(self) -> str:
        svg = vega_to_svg(self._spec)
        if svg is not None:
            return f'<div class="lf-chart">{svg}</div>'
        text = json.dumps(self._spec, indent=2, default=str)[:20000]
        return (f'<div class="lf-chart"><p class="lf-note">This chart type is shown as its '
                f"Vega-Lite spec.</p><pre>{esc(text)}</pre></div>")  # fmt: skip


class ProgressBar(UserComponent):
    """A progress bar: `update(value, metadata=...)`; the card shows its final value."""

    type = "progressBar"
    REALTIME_UPDATABLE = True

    def __init__(self, max: int = 100, label: str | None = None, value: int = 0,
                 unit: str | None = None, metadata: str | None = None):  # fmt: skip
        self._max, self._label, self._value = max, label, value
        self._unit, self._metadata = unit, metadata

    def update(self, new_value: int, metadata: str | None = None) -> None:
        self._value = new_value
        if metadata is not None:
            self._metadata = metadata

    def render(self) -> str:
        unit = f" {self._unit}" if self._unit else ""
        label = f'<div class="lf-name">{esc(self._label)}</div>' if self._label else ""
        details = f' <span class="lf-note">{esc(self._metadata)}</span>' if self._metadata else ""
        return (f'<div class="lf-progress">{label}<progress max="{esc(self._max)}" '
                f'value="{esc(self._value)}"></progress> '
                f"{esc(self._value)}/{esc(self._max)}{esc(unit)}{details}</div>")  # fmt: skip


class Error(UserComponent):
    """An exception, shown with its title."""

    type = "error"

    def __init__(self, exception: BaseException | Any, title: str | None = None):
        self._exception, self._title = exception, title

    def render(self) -> str:
        return _error_box(self._title or "Error", repr(self._exception))


__all__ = [
    "Artifact",
    "Error",
    "Image",
    "Markdown",
    "MetaflowCardComponent",
    "ProgressBar",
    "Table",
    "UserComponent",
    "VegaChart",
]  # fmt: skip
