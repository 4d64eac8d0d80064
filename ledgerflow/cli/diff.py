"""What `ledgerflow diff` prints for a diff of two runs (`ledgerflow/diff.py` computes it)."""

from __future__ import annotations

from typing import Any

from ..diff import diff_runs

__all__ = ["diff_lines", "diff_runs"]


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
    from .common import printable  # names and values from the ledgers: escaped on screen

    return [printable(line) for line in lines]


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
