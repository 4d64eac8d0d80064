"""Imports point down (docs/architecture.md): no library module imports from cli/ but the
two entry points, and the commands' modules do not import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import ledgerflow

ROOT = Path(ledgerflow.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved), at any depth."""
    package = ".".join(("ledgerflow", *path.relative_to(ROOT).parent.parts))
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_only_the_entry_points_import_the_command_lines():
    upward = {}
    for path in ROOT.rglob("*.py"):
        if path.relative_to(ROOT).parts[0] == "cli":
            continue
        hits = sorted(m for m in _imports(path) if m.startswith("ledgerflow.cli."))
        if hits:
            upward[str(path.relative_to(ROOT))] = hits[0]
    assert upward == {
        "flowspec.py": "ledgerflow.cli.flow_cli",  # FlowSpec() runs the flow's command line
        "__main__.py": "ledgerflow.cli.main",  # python -m ledgerflow
    }


def test_the_ledgerflow_command_adds_commands_it_does_not_get_imported_by():
    main = ROOT / "cli" / "main.py"
    for name in ("upkeep_cmds.py", "ui_cmd.py"):
        assert "ledgerflow.cli.main" not in _imports(main.parent / name), name
