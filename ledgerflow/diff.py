"""Which artifacts differ between two runs, by SHA, never loading a value (`ledgerflow diff`
and the diff page of `ledgerflow ui`).

Tasks are matched by step and foreach position (the index in each enclosing foreach; a
step run several times by a loop is matched by its order within that position), using the
final attempt of each. An artifact passed on unchanged (inherited) in both runs is reported
only at the step that produced it, so a changed parameter shows once, not at every step.

A changed artifact shows old -> new when both values are JSON-encoded and small (their JSON
text, read and checked against its SHA-256 but never unpickled); otherwise its sizes and
SHAs.
"""

from __future__ import annotations

from typing import Any

from . import reads
from .codec import JSON
from .exceptions import LedgerError
from .identify import stored_json
from .ledger import Ledger

# JSON-encoded values up to this many bytes are shown in full as old -> new.
VALUE_SHOWN_UP_TO = 200

_Info = tuple[str, bool, int, str]  # (sha, inherited, size, encoding)


def diff_runs(ledger: Ledger, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
    """The `diff --json` document for runs a and b, each (flow, run_id)."""
    pk_a, pk_b = reads.run_pk(ledger, *a), reads.run_pk(ledger, *b)
    side_a = _Side(ledger, f"{a[0]}/{a[1]}", pk_a)
    side_b = _Side(ledger, f"{b[0]}/{b[1]}", pk_b)
    order = reads.step_order(ledger, pk_b)
    order += [s for s in reads.step_order(ledger, pk_a) if s not in order]
    steps = [_diff_step(ledger, step, side_a, side_b) for step in order]
    identical = all(s["tasks_a"] == s["tasks_b"] and not s["tasks"] for s in steps)
    return {"a": side_a.pathspec, "b": side_b.pathspec, "identical": identical, "steps": steps}


class _Side:
    """One run's final task attempts, keyed by (step, foreach path, occurrence)."""

    def __init__(self, ledger: Ledger, pathspec: str, run_pk: int):
        self.pathspec = pathspec
        self.shas = reads.run_artifact_shas(ledger, run_pk)
        self.tasks: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        seen: dict[tuple[str, tuple[int, ...]], int] = {}
        final = reads.final_tasks(ledger, run_pk)
        final.sort(key=lambda r: (r["step"], reads.id_key(r["task_id"])))
        for row in final:  # by task id within each step: a loop's repeats in order
            path = foreach_path(row)
            occurrence = seen.get((row["step"], path), 0)
            seen[(row["step"], path)] = occurrence + 1
            self.tasks.setdefault(row["step"], {})[(path, occurrence)] = row

    def task_pathspec(self, row: dict[str, Any]) -> str:
        return f"{self.pathspec}/{row['step']}/{row['task_id']}"


def _diff_step(ledger: Ledger, step: str, a: _Side, b: _Side) -> dict[str, Any]:
    tasks_a, tasks_b = a.tasks.get(step, {}), b.tasks.get(step, {})
    task_diffs = []
    for key in sorted(set(tasks_a) | set(tasks_b)):
        ta, tb = tasks_a.get(key), tasks_b.get(key)
        entry: dict[str, Any] = {
            "index": list(key[0]),
            "a": a.task_pathspec(ta) if ta else None,
            "b": b.task_pathspec(tb) if tb else None,
            "changed": [],
            "added": [],
            "removed": [],
        }
        if ta and tb:
            arts_a, arts_b = a.shas.get(ta["pk"], {}), b.shas.get(tb["pk"], {})
            entry.update(_compare(arts_a, arts_b))
            if not (entry["changed"] or entry["added"] or entry["removed"]):
                continue
            entry["values"] = {name: {"a": _side_value(ledger, arts_a[name]),
                                      "b": _side_value(ledger, arts_b[name])}
                               for name in entry["changed"]}  # fmt: skip
        task_diffs.append(entry)
    return {
        "step": step,
        "tasks_a": len(tasks_a),
        "tasks_b": len(tasks_b),
        **{kind: sorted({n for t in task_diffs for n in t[kind]})
           for kind in ("changed", "added", "removed")},
        "tasks": task_diffs,
    }  # fmt: skip


def _side_value(ledger: Ledger, info: _Info) -> dict[str, Any]:
    """One side of a changed artifact: sha, size, encoding, and `json` (its JSON text) for a
    small JSON-encoded value. Never unpickles: only JSON text is read."""
    sha, _, size, encoding = info
    out: dict[str, Any] = {"sha": sha, "size": size, "encoding": encoding}
    # The blob's own raw_size bounds what read_raw decompresses; the artifact row's size is
    # a claim a received file can forge (issue 30 item 7).
    raw_size = reads.blob_size_and_encoding(ledger, sha)
    if (encoding == JSON and isinstance(size, int) and size <= VALUE_SHOWN_UP_TO and raw_size
            and isinstance(raw_size["raw_size"], int)
            and raw_size["raw_size"] <= VALUE_SHOWN_UP_TO):  # fmt: skip
        _, raw = ledger.read_raw(sha)  # checked against its SHA-256
        out["json"] = bytes(raw).decode("utf-8")
    return out


def _compare(a: dict[str, _Info], b: dict[str, _Info]) -> dict[str, list[str]]:
    changed, added, removed = [], [], []
    for name in sorted(set(a) | set(b)):
        if name in a and name in b:
            (sha_a, inh_a, *_), (sha_b, inh_b, *_) = a[name], b[name]
            if sha_a != sha_b and not (inh_a and inh_b):
                changed.append(name)
        elif name in b:
            if not b[name][1]:
                added.append(name)
        elif not a[name][1]:
            removed.append(name)
    return {"changed": changed, "added": added, "removed": removed}


def foreach_path(row: dict[str, Any]) -> tuple[int, ...]:
    """The task's index in each enclosing foreach, outermost first (() outside any)."""
    stack = stored_json(row["foreach_stack"], "a task's foreach_stack", [])
    try:
        return tuple(int(frame[3]) for frame in stack)
    except (TypeError, ValueError, IndexError, KeyError):
        raise LedgerError(
            "a task's foreach_stack in the ledger is malformed; the file is "
            "damaged: run `ledgerflow doctor`"
        ) from None
