"""Lint rule: a step must not import `metaflow`.

Metaflow's tutorials import inside steps (`from metaflow import Flow, get_metadata`, in
tutorial 03). After switching the flow's top import to ledgerflow, such a line either fails
in the middle of a run (ModuleNotFoundError) or, worse, with Metaflow installed, quietly
reads Metaflow's datastore instead of the ledger. `check` and `run` refuse it before
anything runs, naming the line and what to write instead.

There is deliberately no `metaflow` alias module (docs/compatibility.md says why): where
Metaflow is installed an alias could not apply, and that is exactly where the silent
wrong read happens. A line that really means Metaflow (reading old Metaflow runs during a
migration) ends with `# ledgerflow: allow-metaflow`.
"""

from __future__ import annotations

import ast
from typing import Any

from .exceptions import LintError
from .graph import FlowGraph, deindent_docstring
from .sourcecode import function_source_lines

ALLOW = "# ledgerflow: allow-metaflow"


def _replacement(node: ast.Import | ast.ImportFrom) -> str:
    """The same import, from ledgerflow."""
    if isinstance(node, ast.ImportFrom):
        module = "ledgerflow" + (node.module or "")[len("metaflow") :]
        names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
        return f"from {module} import {names}"
    parts = []
    for alias in node.names:
        module = "ledgerflow" + alias.name[len("metaflow") :]
        parts.append(module + (f" as {alias.asname}" if alias.asname else " as metaflow"
                               if alias.name == "metaflow" else ""))  # fmt: skip
    return "import " + ", ".join(parts)


def _is_metaflow(name: str | None) -> bool:
    return name is not None and (name == "metaflow" or name.startswith("metaflow."))


def metaflow_imports(func: Any) -> list[tuple[int, str, str]]:
    """(line, the import as written, what to write instead) for each import of metaflow in
    a step function's body. Nothing when its source cannot be read."""
    try:
        lines, first = function_source_lines(func)
        tree = ast.parse(deindent_docstring("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_metaflow(node.module):
            pass
        elif isinstance(node, ast.Import) and any(_is_metaflow(a.name) for a in node.names):
            pass
        else:
            continue
        text = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        if text.endswith(ALLOW):
            continue
        found.append((first + node.lineno - 1, text, _replacement(node)))
    return found


def check_metaflow_imports(graph: FlowGraph, flow_cls: Any = None) -> None:
    """Ours: no step imports metaflow (it would not read this ledger)."""
    cls = flow_cls if flow_cls is not None else graph.flow_cls
    for node in graph:
        func = getattr(cls, node.name, None)
        for lineno, written, instead in metaflow_imports(func):
            raise LintError(
                f"Step '{node.name}' imports metaflow (`{written}`): steps read this ledger "
                f"through ledgerflow, not Metaflow's datastore; write `{instead}` instead "
                f"(or end the line with `{ALLOW}` if it really means Metaflow)",
                lineno,
                node.source_file,
            )


check_metaflow_imports.wants_flow_cls = True  # type: ignore[attr-defined]
