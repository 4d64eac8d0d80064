"""Imports point down (docs/architecture.md): no module imports another that imports it back,
however far round; no library module imports from cli/ but the two entry points; storage
imports nothing above it; and functions fit on a screen."""

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
        hits = sorted(m for m in _imports(path) if m.startswith("ledgerflow.cli.")
                      and (ROOT.parent / (m.replace(".", "/") + ".py")).exists())  # fmt: skip
        if hits:
            upward[str(path.relative_to(ROOT))] = hits
    assert upward == {
        # The package face hands FlowSpec() the flow's command line (flowspec.use_command_line)
        # and reports a flow definition's mistakes as one line (sys.excepthook).
        "__init__.py": ["ledgerflow.cli.errors", "ledgerflow.cli.flow_cli"],
        "__main__.py": ["ledgerflow.cli.main"],  # python -m ledgerflow
    }


def test_the_ledgerflow_command_adds_commands_it_does_not_get_imported_by():
    main = ROOT / "cli" / "main.py"
    for name in ("upkeep_cmds.py", "ui_cmd.py"):
        assert "ledgerflow.cli.main" not in _imports(main.parent / name), name


# The storage layer (docs/architecture.md): the file, its schema, its reads and writes.
STORAGE = ("ledger.py", "writes.py", "reads.py", "tables.py", "schema.py", "ddl_v1.py",
           "ddl_latest.py", "connections.py", "checkpointer.py", "blobstore.py", "identify.py", "records.py",
           "search_index.py", "location.py", "logstore.py")  # fmt: skip
# What storage may use: itself and the modules below it (values, times, errors, liveness).
BELOW = ("clock", "codec", "exceptions", "liveness", "preview", "provenance", "secrets_check",
         "structs", "trust_file")  # fmt: skip


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
    # A new ledger is recorded as the user's own in the trust store's file (trust_file.py,
    # below); trust_store.py, which reads ledgers to decide, stands above.
    assert upward == {}


def test_the_trust_store_file_knows_nothing_of_ledgers():
    """trust_file.py keeps the records; what they grant is decided above the storage layer."""
    assert {m for m in _imports(ROOT / "trust_file.py") if m.startswith("ledgerflow")} == set()


def test_functions_fit_on_a_screen():
    """No function is over 80 lines, the size a reader takes in at once."""
    long = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.end_lineno - node.lineno >= 80:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = (
                        node.end_lineno - node.lineno + 1
                    )
    assert long == {}


def _module_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports, at any depth (inside
    functions and under TYPE_CHECKING too). `from . import x` names module x, not the
    package's face."""
    files = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(("ledgerflow", *path.relative_to(ROOT).with_suffix("").parts))
        files[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{up}.{base}" if node.module else up
                subs = {f"{base}.{a.name}" for a in node.names} & files.keys()
                found |= subs if len(subs) == len(node.names) else subs | {base}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {_owner(m, files) for m in found if _owner(m, files)} - {name}
    return graph


def _owner(module: str, files: dict[str, Path]) -> str:
    while module and module not in files:
        module = module.rpartition(".")[0]
    return module


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_imports_run_one_way():
    """No import circle anywhere in the package, the storage layer included."""
    assert [sorted(c) for c in _circles(_module_graph())] == []


def test_the_circle_check_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [{"a", "b", "c"}]
