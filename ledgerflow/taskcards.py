"""Rendering a task's cards when its step has returned: the one call `task.py` makes.

Each `@card` of the step becomes a `CardRecord` and an HTML blob added to the task's
result, so the writer stores them in the task's own transaction. Nothing here may fail the
task (Metaflow's rule): a card that fails, or takes longer than its `timeout`, is recorded
with its error (and, with `save_errors=True`, an HTML page showing it).

Part of the task path (it fills a `TaskResult`); the cards themselves, their components and
renderers, are in cards/, which knows nothing of tasks.
"""

from __future__ import annotations

import threading
from typing import Any

# Imported by task.py on every run: what only steps with cards need is imported in _render.


def render_task_cards(func: Any, spec: Any, result: Any, graph: Any, chunk_size: int,
                      flow: Any = None) -> None:  # fmt: skip
    """Render the step's cards into `result.cards` and `result.blobs`. Never raises. `flow`
    is the step's flow object: custom card types (cards/custom.py) read its values."""
    try:
        _render(func, spec, result, graph, chunk_size, flow)
    except Exception as e:  # noqa: BLE001 - a bug of ours must not fail the user's task either
        _warn(result, spec, f"cards were not rendered ({type(e).__name__}: {e})")


def _render(func: Any, spec: Any, result: Any, graph: Any, chunk_size: int, flow: Any) -> None:
    cards = []
    for deco in getattr(func, "decorators", ()):
        if deco.name == "card":
            cards.append(deco.attributes)
    if not cards and not _collectors_in_use():
        return  # the common case: no @card, no current.card
    from .cards.collector import default_editable, take_collector
    from .records import CardRecord

    collector = take_collector(spec.pathspec)
    if not cards:
        if collector is not None and collector._has_default_components:
            _warn(
                result,
                spec,
                f"step '{spec.step}' appended to current.card but has no "
                "@card; add @card to the step (or run with --with card)",
            )
        return
    if not isinstance(result.finished_at, str):  # a task's own process: time.time()s
        from .taskspec import stored_time

        result.started_at = stored_time(result.started_at)
        result.finished_at = stored_time(result.finished_at)
    task = _task_facts(spec, result, graph)
    default_index = default_editable(cards)
    if collector is not None:
        _check_claims(collector, cards, default_index, result, spec)
    shared = _check_duplicate_ids(cards, result, spec)
    seen_types: set[str] = set()
    for index, attrs in enumerate(cards):
        card_type = str(attrs.get("type") or "default")
        components = (
            collector._for_card(
                attrs,
                default_index,
                index,
                card_type not in seen_types,
                shared_id=str(attrs.get("id")) in shared,
            )
            if collector is not None
            else []
        )
        seen_types.add(card_type)
        make = _renderer(card_type, attrs, task, spec, result, flow)
        html, error = _render_one(make, card_type, components, float(attrs.get("timeout") or 45))
        if error is not None:
            _warn(
                result,
                spec,
                f"@card(type={card_type!r}) failed to render: {error.strip().splitlines()[-1]}",
            )
            if attrs.get("save_errors", True):
                from .cards.render import error_card

                html = error_card(spec.pathspec, card_type, error)
        sha = _store(html, result, chunk_size) if html is not None else None
        result.cards.append(CardRecord(type=card_type, id=attrs.get("id"), sha=sha, error=error))


def cards_to_render(decorators: dict[str, Any]) -> bool:
    """Whether render_task_cards has anything to do for a step with these decorators (by
    name): a @card, or `current.card` used (its collector warns without one)."""
    return "card" in decorators or _collectors_in_use()


def _collectors_in_use() -> bool:
    import sys

    module = sys.modules.get("ledgerflow.cards.collector")  # loaded by current.card only
    return module is not None and bool(module._by_task)


def _renderer(card_type: str, attrs: dict[str, Any], task: dict[str, Any], spec: Any,
              result: Any, flow: Any) -> Any:  # fmt: skip
    """A function of the components giving the card's HTML, or None for an unknown type."""
    from .cards.render import CARD_TYPES

    built_in = CARD_TYPES.get(card_type)
    if built_in is not None:
        return lambda components: built_in(task, components)
    from .cards.custom import CardTask, card_class, make_card

    cls = card_class(card_type)
    if cls is None:
        return None
    shas = {n: r.sha for n, r in sorted(result.artifacts.items()) if not n.startswith("_")}
    card_task = CardTask(spec.pathspec, flow, shas, result.finished_at,
                         result.status == "succeeded")  # fmt: skip

    def custom(components: list[Any]) -> str:
        from .cards.components import render_safely

        card = make_card(cls, dict(attrs.get("options") or {}),
                         [render_safely(c) for c in components], task.get("graph_info"),
                         flow)  # fmt: skip
        html = card.render(card_task)
        if not isinstance(html, str):
            raise TypeError(f"{cls.__name__}.render(task) returned a "
                            f"{type(html).__name__}, not the card's HTML text")  # fmt: skip
        return html

    return custom


def _render_one(make: Any, card_type: str, components: list[Any],
                timeout: float) -> tuple[str | None, str | None]:  # fmt: skip
    """(html, None) or (None, error text), in a watched thread when a timeout applies."""
    if make is None:
        from .cards.custom import registered_types
        from .cards.render import CARD_TYPES

        known = sorted(CARD_TYPES) + registered_types()
        return None, (f"no card type {card_type!r}; the types known here are "
                      f"{', '.join(known)} (register a MetaflowCard subclass with "
                      "ledgerflow.cards.register_card)")  # fmt: skip
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["html"] = make(components)
        except Exception:  # noqa: BLE001 - a renderer's failure is reported, not raised
            import traceback

            outcome["error"] = traceback.format_exc()

    worker = threading.Thread(target=target, name="ledgerflow-card", daemon=True)
    worker.start()
    worker.join(timeout if timeout > 0 else None)
    if worker.is_alive():
        return None, f"rendering took longer than the card's timeout ({timeout:g} seconds)"
    if "error" in outcome:
        return None, outcome["error"]
    return outcome["html"], None


def _store(html: str, result: Any, chunk_size: int) -> str:
    from . import codec

    blob = codec.encode_blob(html, chunk_size)  # a str: JSON-encoded, never a pickle
    blob.preview = ""  # cards stay out of artifact search; the preview column wants text
    result.blobs.append(blob)
    return str(blob.sha)


def _task_facts(spec: Any, result: Any, graph: Any) -> dict[str, Any]:
    def row(record: Any) -> dict[str, Any]:
        return {"name": record.name, "type": record.type, "size": record.size,
                "preview": record.preview}  # fmt: skip

    records = result.artifacts
    try:
        graph_info = graph.to_info()
    except Exception:  # noqa: BLE001 - the card only loses its graph
        graph_info = None
    return {
        "pathspec": spec.pathspec,
        "status": result.status,
        "attempt": spec.attempt,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "parameters": [row(records[n]) for n in sorted(spec.param_names) if n in records],
        "artifacts": [
            row(r)
            for n, r in sorted(records.items())
            if not n.startswith("_") and n not in spec.param_names
        ],
        "graph_info": graph_info,
    }


def _check_claims(collector: Any, cards: list[dict[str, Any]], default_index: int | None,
                  result: Any, spec: Any) -> None:  # fmt: skip
    """Warn, as Metaflow does, about components no card receives."""
    if collector._has_default_components and default_index is None:
        _warn(
            result,
            spec,
            "current.card.append cannot tell which @card to use; give all but "
            "one @card of the step an id, or mark one customize=True",
        )
    ids = {str(c["id"]) for c in cards if c.get("id") is not None}
    for key in collector._unclaimed_ids(ids):
        _warn(
            result,
            spec,
            f"current.card[{key!r}] has no @card(id={key!r}) on step "
            f"'{spec.step}'; its components were dropped",
        )


def _check_duplicate_ids(cards: list[dict[str, Any]], result: Any, spec: Any) -> set[str]:
    """Metaflow's warning for two @card sharing an id (both are still rendered)."""
    ids = [str(c["id"]) for c in cards if c.get("id") is not None]
    shared = sorted({i for i in ids if ids.count(i) > 1})
    if shared:
        _warn(
            result,
            spec,
            "Multiple `@card` decorator have been annotated with duplicate ids : "
            f"{', '.join(shared)}. `current.card['{shared[0]}']` will not work",
        )
    return set(shared)


def _warn(result: Any, spec: Any, text: str) -> None:
    from .taskoutput import warn

    warn(result, f"[@card WARNING] {text}")
