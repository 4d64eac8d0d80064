"""The source lines of a flow's functions, from one parse of their file.

`inspect.getsourcelines` tokenizes the file from the function's first line each time it is
called (and compiles tokenize's patterns on first use): about 5 ms for a small flow, every
run. Parsing the file once and taking each function's span from its AST gives the same lines.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any

# file -> (its size and mtime, its lines, {first line of a function or its decorators: last})
_parsed: dict[str, tuple[tuple[int, int], list[str], dict[int, int]]] = {}


def function_source_lines(func: Any) -> tuple[list[str], int]:
    """(lines, first line number) of a function, decorators included, as
    inspect.getsourcelines returns them. OSError/TypeError when there is no source."""
    func = unwrap(func)
    code = getattr(func, "__code__", None)
    parsed = _parse(code.co_filename) if code is not None else None
    end = parsed[1].get(code.co_firstlineno) if code is not None and parsed is not None else None
    if code is None or parsed is None or end is None:  # no file, or not in it (changed since)
        import inspect

        return inspect.getsourcelines(func)
    return parsed[0][code.co_firstlineno - 1 : end], code.co_firstlineno


def function_file(func: Any) -> str:
    """The file a function was defined in (what inspect.getfile gives the unwrapped one)."""
    code = getattr(unwrap(func), "__code__", None)
    if code is None:
        raise TypeError(f"{func!r} is not a Python function")
    return code.co_filename


def class_file(cls: type) -> str | None:
    """The source file of the module defining a class, None if it has none on disk."""
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return file if file and os.path.exists(file) else None


def unwrap(func: Any) -> Any:
    """The function under decorators that set __wrapped__ (functools.wraps)."""
    seen = set()
    while hasattr(func, "__wrapped__") and id(func) not in seen:
        seen.add(id(func))
        func = func.__wrapped__
    return func


def _parse(file: str) -> tuple[list[str], dict[int, int]] | None:
    """A file's lines (as Python reads them: universal newlines) and its functions' spans.
    None when it cannot be read as UTF-8 (inspect, through linecache, handles the rest)."""
    try:
        stat = os.stat(file)
        signature = (stat.st_size, stat.st_mtime_ns)
        cached = _parsed.get(file)
        if cached is not None and cached[0] == signature:
            return cached[1], cached[2]
        with open(file, encoding="utf-8-sig") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError):
        return None
    spans: dict[int, int] = {}
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans[first] = node.end_lineno
    _parsed[file] = (signature, lines, spans)
    return lines, spans
