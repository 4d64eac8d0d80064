"""The source lines of a flow's functions, from one parse of their file.

`inspect.getsourcelines` tokenizes the file from the function's first line each time it is
called (and compiles tokenize's patterns on first use): about 5 ms for a small flow, every
run. Parsing the file once and taking each function's span from its AST gives the same lines.
"""

from __future__ import annotations

import ast
import inspect
import linecache
from typing import Any

# file -> (the lines parsed, {first line of a function or its decorators: its last line})
_spans: dict[str, tuple[list[str], dict[int, int]]] = {}


def function_source_lines(func: Any) -> tuple[list[str], int]:
    """(lines, first line number) of a function, decorators included, as
    inspect.getsourcelines returns them. OSError/TypeError when there is no source."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return inspect.getsourcelines(func)
    file = inspect.getsourcefile(func) or inspect.getfile(func)
    lines = linecache.getlines(file, func.__globals__)
    first = code.co_firstlineno
    end = _function_spans(file, lines).get(first)
    if end is None:  # not found (e.g. the file changed since the import): ask inspect
        return inspect.getsourcelines(func)
    return lines[first - 1 : end], first


def _function_spans(file: str, lines: list[str]) -> dict[int, int]:
    cached = _spans.get(file)
    if cached is not None and cached[0] is lines:
        return cached[1]
    spans: dict[int, int] = {}
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans[first] = node.end_lineno
    _spans[file] = (lines, spans)
    return spans
