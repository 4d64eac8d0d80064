"""The code a step's result depends on, as one SHA-256: the step's fingerprint for `--reuse`.

A task is reused only when its step's code is the code that made the earlier result. What
counts as "its code" (docs/reuse.md says the same to users):

- the step function's own source, its decorators included, as an AST: editing a comment or
  the layout does not change it, editing a statement does;
- every module-level function or class the step refers to by name, found in the function's
  bytecode (global names, attribute names, nested functions and comprehensions), followed
  transitively through the functions and methods they refer to, in whatever module of the
  user's they live;
- methods and class attributes of the flow class (and its bases, but for ledgerflow's own
  `FlowSpec`) the step reaches through `self.<name>`, other steps excepted: `self.next(self.b)`
  names step `b` but its code is `b`'s own fingerprint;
- plain constants at module or class level (numbers, strings, tuples...), by their repr;
- a user module the step refers to (`import helpers` then `helpers.f()`): its whole source;
  a third-party one: its distribution's version; the standard library: Python's version
  (already part of every key).

A name is followed when it resolves at the time the run starts. The search errs on the side
of including too much (an attribute `self.model` also matches a global `model`): a needless
re-run costs time, a wrong reuse costs a wrong result. What cannot be seen from the code —
files read, the network, the clock, randomness, environment variables — is the step's
business: such steps opt out with `@reuse(False)`.
"""

from __future__ import annotations

import ast
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Mapping
from typing import Any

from .codec import sha256
from .sourcecode import function_source_lines, unwrap

# The kinds of part a fingerprint lists (shown by `ledgerflow explain`).
STEP, FUNCTION, CLASS, CONSTANT, MODULE, PACKAGE, OPAQUE = (
    "step", "function", "class", "constant", "module", "package", "opaque",
)  # fmt: skip

_PLAIN = (int, float, complex, str, bytes, bool, type(None))
_LEDGERFLOW_DIR = os.path.dirname(os.path.abspath(__file__))


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.add(_LEDGERFLOW_DIR)
    return tuple(os.path.abspath(d) + os.sep for d in dirs)


_LIBRARY_DIRS = _library_dirs()


def fingerprint(
    flow_cls: type, step_name: str, step_names: set[str]
) -> tuple[str, list[list[str]]]:
    """(SHA-256 of a step's code, its parts as [kind, name, sha]), sorted by name."""
    walker = _Walker(flow_cls, step_names)
    func = getattr(flow_cls, step_name)
    walker.add(STEP, f"{flow_cls.__name__}.{step_name}", _source_digest(func))
    walker.follow_function(func)
    namespace = getattr(unwrap(func), "__globals__", {})
    for name in sorted(_decorator_names(func)):  # `@retry(times=N)`: N is not in the bytecode
        if name in namespace:
            walker.follow(name, namespace[name], namespace.get("__name__", ""))
    parts = sorted(walker.parts.values(), key=lambda p: (p[0] != STEP, p[1]))
    digest = sha256(repr(parts).encode())
    return digest, [list(p) for p in parts]


class _Walker:
    def __init__(self, flow_cls: type, step_names: set[str]):
        self.flow_cls = flow_cls
        self.step_names = step_names
        self.parts: dict[tuple[str, str], tuple[str, str, str]] = {}
        self.seen: set[int] = set()
        # The flow class's own attributes (and its bases', but for ledgerflow's FlowSpec).
        self.members: dict[str, Any] = {}
        for klass in reversed(flow_cls.__mro__):
            if klass is object or _is_library(getattr(sys.modules.get(klass.__module__),
                                                      "__file__", None)):  # fmt: skip
                continue
            self.members.update(vars(klass))

    def add(self, kind: str, name: str, digest: str) -> None:
        self.parts[(kind, name)] = (kind, name, digest)

    def follow_function(self, func: Any) -> None:
        func = unwrap(func)
        code = getattr(func, "__code__", None)
        if code is None or id(code) in self.seen:
            return
        self.seen.add(id(code))
        namespace = getattr(func, "__globals__", {})
        for name in sorted(_names(code)):
            if name in self.members and name not in self.step_names:
                self.follow(f"{self.flow_cls.__name__}.{name}", self.members[name])
            if name in namespace:
                self.follow(name, namespace[name], namespace.get("__name__", ""))

    def follow(self, name: str, value: Any, module: str = "") -> None:
        label = f"{module}.{name}" if module else name
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self.follow(name, accessor, module)
            return
        if isinstance(value, types.FunctionType):
            if _is_library(value.__code__.co_filename) or getattr(value, "is_step", False):
                return
            self.add(FUNCTION, label, _source_digest(value))
            self.follow_function(value)
        elif isinstance(value, type):
            self._follow_class(label, value)
        elif isinstance(value, types.ModuleType):
            self._follow_module(value)
        elif _is_plain(value):
            self.add(CONSTANT, label, _sha(repr(value)))
        elif module or name.startswith(f"{self.flow_cls.__name__}."):
            # An object made at import time (a compiled regex, a dict, a model): its repr when
            # that says what it holds, else only its type (listed, so `explain` shows it).
            text = _repr(value)
            if text is None:
                self.add(OPAQUE, label, _sha(type(value).__qualname__))
            else:
                self.add(CONSTANT, label, _sha(text))

    def _follow_class(self, label: str, cls: type) -> None:
        file = getattr(sys.modules.get(cls.__module__), "__file__", None)
        if _is_library(file) or id(cls) in self.seen:
            return
        self.seen.add(id(cls))
        try:
            lines, _ = _class_source(cls)
            self.add(CLASS, label, _ast_digest("".join(lines)))
        except (OSError, TypeError):
            self.add(OPAQUE, label, _sha(cls.__qualname__))
        for member in vars(cls).values():
            target = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if isinstance(target, types.FunctionType):
                self.follow_function(target)

    def _follow_module(self, module: types.ModuleType) -> None:
        file = getattr(module, "__file__", None)
        name = module.__name__
        if file is None or name == "builtins":
            return
        if not _is_library(file):
            try:
                with open(file, "rb") as f:
                    self.add(MODULE, name, sha256(f.read()))
            except OSError:
                self.add(OPAQUE, name, _sha(name))
        elif not os.path.abspath(file).startswith(_stdlib_dirs()) and not file.startswith(
            _LEDGERFLOW_DIR
        ):
            top = name.split(".")[0]
            self.add(PACKAGE, top, _sha(_distribution_version(top)))


def _names(code: types.CodeType) -> set[str]:
    """Every global and attribute name a code object and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _decorator_names(func: Any) -> set[str]:
    try:
        lines, _ = function_source_lines(func)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return set()
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return {
        node.id
        for d in defs
        for deco in d.decorator_list
        for node in ast.walk(deco)
        if isinstance(node, ast.Name)
    }


def _source_digest(func: Any) -> str:
    try:
        lines, _ = function_source_lines(func)
    except (OSError, TypeError):
        code = unwrap(func).__code__
        return sha256(code.co_code + repr(code.co_consts).encode())
    return _ast_digest("".join(lines))


def _class_source(cls: type) -> tuple[list[str], int]:
    import inspect

    return inspect.getsourcelines(cls)


def _ast_digest(source: str) -> str:
    """The SHA-256 of source's AST: comments, blank lines and layout do not count."""
    text = textwrap.dedent(source)
    try:
        tree: ast.AST = ast.parse(text)
    except SyntaxError:
        return _sha(text)
    return _sha(ast.dump(tree))


def _sha(text: str) -> str:
    return sha256(text.encode("utf-8", "surrogatepass"))


def _is_plain(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if depth < 3 and isinstance(value, (tuple, frozenset)):
        return len(value) <= 1000 and all(_is_plain(v, depth + 1) for v in value)
    return False


def _repr(value: Any) -> str | None:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a user's __repr__ may raise anything; then: opaque
        return None
    if " at 0x" in text or len(text) > 100_000:
        return None  # an address: different in every process, so it says nothing
    return text


def _is_library(file: str | None) -> bool:
    return file is None or os.path.abspath(file).startswith(_LIBRARY_DIRS)


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib"))


_versions: dict[str, str] = {}
_distributions: Mapping[str, list[str]] | None = None  # top-level module -> distributions


def _distribution_version(top: str) -> str:
    """`numpy` -> "numpy 2.1.3": the version of the distribution providing a top-level module.
    (importlib.metadata is imported here, on a run's first key: `import ledgerflow` does
    not pay for it, and the installed distributions are listed once.)"""
    global _distributions
    if top not in _versions:
        import importlib.metadata

        if _distributions is None:
            _distributions = importlib.metadata.packages_distributions()
        try:
            names = list(_distributions.get(top, [top]))
            _versions[top] = f"{names[0]} {importlib.metadata.version(names[0])}"
        except importlib.metadata.PackageNotFoundError:
            _versions[top] = f"{top} (no version)"
    return _versions[top]
