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
        # The package face hands FlowSpec() the flow's command line (flowspec.use_command_line)
        "__init__.py": "ledgerflow.cli.flow_cli",
        "__main__.py": "ledgerflow.cli.main",  # python -m ledgerflow
    }


def test_the_ledgerflow_command_adds_commands_it_does_not_get_imported_by():
    main = ROOT / "cli" / "main.py"
    for name in ("upkeep_cmds.py", "ui_cmd.py"):
        assert "ledgerflow.cli.main" not in _imports(main.parent / name), name


# The storage layer (docs/architecture.md): the file, its schema, its reads and writes.
STORAGE = ("ledger.py", "writes.py", "reads.py", "tables.py", "schema.py", "ddl_v1.py",
           "connections.py", "checkpointer.py", "blobstore.py", "identify.py", "records.py",
           "search_index.py", "location.py", "logstore.py")  # fmt: skip
# What storage may use: itself and the modules below it (values, times, errors, liveness).
BELOW = ("clock", "codec", "exceptions", "liveness", "preview", "provenance", "secrets_check",
         "structs")  # fmt: skip


def test_the_storage_layer_imports_nothing_above_it():
    allowed = {f"ledgerflow.{name.removesuffix('.py')}" for name in STORAGE}
    allowed |= {f"ledgerflow.{name}" for name in BELOW}
    upward = {}
    for name in STORAGE:
        modules = {m for m in _imports(ROOT / name) if m.startswith("ledgerflow.")}
        # `from .x import Name` adds ledgerflow.x.Name too: judge the modules.
        hits = sorted(m for m in modules if m.count(".") == 1 and m not in allowed)
        if hits:
            upward[name] = hits
    # The one exception: a new ledger is recorded as the user's own in the trust store
    # (trust_store.record_own), which reads ledgers itself: a circle left for the trust
    # store's split into its file (below) and its decisions (above).
    assert upward == {"ledger.py": ["ledgerflow.trust_store"]}


def test_the_command_modules_functions_fit_on_a_screen():
    """A command is a few small functions (the `ledgerflow` command and a flow's inspection
    commands): none over 80 lines, the size a reader takes in at once."""
    long = {}
    for name in ("main.py", "flow_inspect.py", "common.py", "ledger_args.py", "errors.py"):
        for node in ast.walk(ast.parse((ROOT / "cli" / name).read_text())):
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno >= 80:
                long[f"{name}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}
