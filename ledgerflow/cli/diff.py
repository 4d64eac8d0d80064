"""`ledgerflow diff`: which artifacts differ between two runs, by SHA, never loading a value.

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

from ..codec import JSON
from ..ledger import Ledger
from . import reads

# JSON-encoded values up to this many bytes are shown in full as old -> new.
VALUE_SHOWN_UP_TO = 200

_Info = tuple[str, bool, int, str]  # (sha, inherited, size, encoding)


def diff_runs(ledger: Ledger, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
    """The `diff --json` document for runs a and b, each (flow, run_id)."""
    row_a, row_b = reads.run_row(ledger, *a), reads.run_row(ledger, *b)
    side_a = _Side(ledger, f"{a[0]}/{a[1]}", row_a["pk"])
    side_b = _Side(ledger, f"{b[0]}/{b[1]}", row_b["pk"])
    order = reads.step_order(ledger, row_b["pk"])
    order += [s for s in reads.step_order(ledger, row_a["pk"]) if s not in order]
    steps = [_diff_step(ledger, step, side_a, side_b) for step in order]
    identical = all(s["tasks_a"] == s["tasks_b"] and not s["tasks"] for s in steps)
    return {"a": side_a.pathspec, "b": side_b.pathspec, "identical": identical, "steps": steps}


class _Side:
    """One run's final task attempts, keyed by (step, foreach path, occurrence)."""

    def __init__(self, ledger: Ledger, pathspec: str, run_pk: int):
        self.pathspec = pathspec
        self.shas = reads.task_shas(ledger, run_pk)
        self.tasks: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        seen: dict[tuple[str, tuple[int, ...]], int] = {}
        for row in reads.final_tasks(ledger, run_pk):  # by task id within each step
            path = reads.foreach_path(row)
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
    if encoding == JSON and size <= VALUE_SHOWN_UP_TO:
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


def diff_lines(result: dict[str, Any]) -> list[str]:
    """The text `ledgerflow diff` prints for a diff_runs() result."""
    a, b = result["a"], result["b"]
    lines = [f"A: {a}", f"B: {b}"]
    for s in result["steps"]:
        name, n_a, n_b = s["step"], s["tasks_a"], s["tasks_b"]
        if not n_a or not n_b:
            where, n = ("B", n_b) if not n_a else ("A", n_a)
            lines.append(f"{name}: only in {where} ({n} task{'s' if n != 1 else ''})")
            continue
        head = f"{name}:"
        if n_a != n_b:
            head += f" {n_a} tasks in A, {n_b} in B (matched by foreach index)"
        if n_a == 1 and n_b == 1:
            lines.append(f"{head} {_changes(s) or 'no differences'}")
            lines += _value_lines(s["tasks"][0] if s["tasks"] else {}, "  ")
            continue
        lines.append(head if s["tasks"] else f"{head} no differences")
        for t in s["tasks"]:
            label = f"  {name}{_index_label(t['index'])}"
            if t["a"] is None:
                lines.append(f"{label}: only in B ({t['b']})")
            elif t["b"] is None:
                lines.append(f"{label}: only in A ({t['a']})")
            else:
                ids = f"task {_task_id(t['a'])} vs {_task_id(t['b'])}"
                lines.append(f"{label} ({ids}): {_changes(t)}")
                lines += _value_lines(t, "    ")
    if result["identical"]:
        lines.append("No differences.")
    return lines


def _value_lines(task: dict[str, Any], indent: str) -> list[str]:
    """'x: 0.5 -> 0.7' per changed artifact, or its sizes and SHAs when not plain JSON."""
    lines = []
    for name, sides in task.get("values", {}).items():
        a, b = sides["a"], sides["b"]
        if "json" in a and "json" in b:
            lines.append(f"{indent}{name}: {a['json']} -> {b['json']}")
        else:
            lines.append(f"{indent}{name}: {_blob_text(a)} -> {_blob_text(b)}")
    return lines


def _blob_text(side: dict[str, Any]) -> str:
    return f"{side['encoding']}, {side['size']} bytes, sha {side['sha'][:12]}"


def _changes(d: dict[str, Any]) -> str:
    return "; ".join(f"{kind} {', '.join(d[kind])}"
                     for kind in ("changed", "added", "removed") if d[kind])  # fmt: skip


def _task_id(pathspec: str) -> str:
    return pathspec.rsplit("/", 1)[-1]


def _index_label(index: list[int]) -> str:
    return "[" + "][".join(str(i) for i in index) + "]" if index else ""
