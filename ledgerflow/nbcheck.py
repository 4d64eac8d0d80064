"""Which names a notebook cell uses, as it runs as a script, without binding them.

NBRunner turns the cell that defines a flow into a script of its own (runner.py); names
it reads while the module and its class are being defined (base classes, decorators and
their arguments, class attributes, default values) must then be bound in the cell itself.
Function bodies run later and are not looked at; a star import makes every name possibly
bound, so nothing is reported then.
"""

from __future__ import annotations

import ast

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def unbound_at_import(source: str) -> list[str]:
    """Names read at import time that nothing in `source` binds, in order of first use."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return []
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound |= set(node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    used: list[str] = []
    for name in _read_at_import(tree.body):
        if name not in bound and name not in used:
            used.append(name)
    return used


def _read_at_import(body: list[ast.stmt]) -> list[str]:
    names: list[str] = []
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            exprs: list[ast.AST] = [*stmt.decorator_list, *stmt.args.defaults]
            exprs += [d for d in stmt.args.kw_defaults if d is not None]
            for expr in exprs:
                names += _loads(expr)
        elif isinstance(stmt, ast.ClassDef):
            for expr in [*stmt.decorator_list, *stmt.bases, *(k.value for k in stmt.keywords)]:
                names += _loads(expr)
            names += _read_at_import(stmt.body)
        elif isinstance(stmt, ast.If) and _is_main_guard(stmt):
            continue  # the script's own `if __name__ == "__main__":` runs the flow
        else:
            names += _loads(stmt)
    return names


def _is_main_guard(stmt: ast.If) -> bool:
    test = stmt.test
    return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) \
        and test.left.id == "__name__"  # fmt: skip


def _loads(node: ast.AST) -> list[str]:
    """Names read by `node`, leaving out what runs later (function and lambda bodies)."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Load):
            found.append(current.id)
        for child in ast.iter_child_nodes(current):
            if isinstance(child, _SCOPES):
                if not isinstance(child, ast.Lambda):
                    stack.extend([*child.decorator_list, *child.args.defaults])
                continue
            stack.append(child)
    return found
