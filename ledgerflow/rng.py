"""The random state a task in a forked process starts from: as in a fresh process.

Under Metaflow every task is a fresh interpreter that imports the flow's module again, so
a module that seeds (`random.seed(42)`, `np.random.seed(42)`) gives every task the same
seeded state, and a module that does not gives each task its own. A task forked from the
fork server inherits the server's state instead, and two things go wrong without help:

- CPython reseeds `random` from the OS after every fork, losing the module's seed;
- numpy's global `np.random` state is copied as is, so unseeded tasks all draw the same
  numbers (once `numpy.random` is imported at module level: numpy 2 loads it lazily).

So ledgerflow notes, from its own import on, whether `random.seed`/`setstate` or
`numpy.random.seed`/`set_state` were called (watch()); the fork server records the seeded
states (snapshot()), and each task restores them or draws fresh entropy for the others
(fresh_task_state()). Not covered: a seed set before ledgerflow was imported, or through a
name bound before that (`from random import seed`), and module-level generator objects
(`np.random.default_rng()`, `random.Random()`), which every task inherits as they are.
"""

from __future__ import annotations

import functools
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

# The first of ledgerflow's modules to load: from here on, fork hooks are recorded.
from . import forkhooks  # noqa: F401

# Which global generators the flow's process seeded: "random", "numpy".
seeded: set[str] = set()

_SEEDERS = {"random": ("seed", "setstate"), "numpy.random": ("seed", "set_state")}


def _spy(module: ModuleType, label: str) -> None:
    for name in _SEEDERS[module.__name__]:
        original = getattr(module, name, None)
        if original is None or getattr(original, "_ledgerflow_spy", False):
            continue

        def wrapper(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            seeded.add(label)
            return _original(*args, **kwargs)

        functools.update_wrapper(wrapper, original)
        wrapper._ledgerflow_spy = True  # type: ignore[attr-defined]
        setattr(module, name, wrapper)


_LABELS = {"random": "random", "numpy.random": "numpy"}


class _SpyOnImport:
    """Puts the spy on `random` or `numpy.random` when one is imported after ledgerflow (a
    meta path finder that answers for those two modules only, and only once each)."""

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:  # fmt: skip
        if fullname not in self.names:
            return None
        self.names.discard(fullname)
        if not self.names:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_spy(module: ModuleType) -> None:
            exec_module(module)
            _spy(module, _LABELS[fullname])

        loader.exec_module = exec_and_spy  # type: ignore[method-assign]
        return spec


def watch() -> None:
    """From now on, note seeding of the global generators (called when ledgerflow is
    imported, before the flow module's own top-level code runs)."""
    later = set()
    for name, label in _LABELS.items():
        module = sys.modules.get(name)
        if module is not None:
            _spy(module, label)
        else:
            later.add(name)
    if later and not any(isinstance(f, _SpyOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _SpyOnImport(later))


# The seeded states as the flow's module left them (module_loaded()).
_at_module_end: dict[str, Any] | None = None


def module_loaded() -> None:
    """Called when the flow's module has run (`MyFlow()` at its end starts the command
    line): the seeded states now are what every task of Metaflow starts from. Libraries
    the run then uses may draw from `random`; a task must not see that."""
    global _at_module_end
    _at_module_end = _seeded_states()


def _seeded_states() -> dict[str, Any]:
    states: dict[str, Any] = {}
    if "random" in seeded:
        states["random"] = sys.modules["random"].getstate()
    if "numpy" in seeded and "numpy.random" in sys.modules:
        states["numpy"] = sys.modules["numpy.random"].get_state()
    return states


def snapshot() -> dict[str, Any]:
    """In the fork server: the states for every task to start from (as the module left
    them; for a run started from Python, as they are now)."""
    return _at_module_end if _at_module_end is not None else _seeded_states()


def task_state_needed(states: dict[str, Any]) -> bool:
    """In the fork server, once: whether fresh_task_state has anything to do in its tasks
    (a seeded state to restore, or numpy's global state to reseed); when not, a task skips
    the call (a call into another module is pages written in a freshly forked process)."""
    return bool(states) or "numpy.random" in sys.modules


def fresh_task_state(states: dict[str, Any]) -> None:
    """In a task just forked: the seeded states back (CPython's fork hook reseeded
    `random`), fresh entropy for numpy's global state if the module did not seed it."""
    if "random" in states:
        sys.modules["random"].setstate(states["random"])
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is None:
        return
    if "numpy" in states:
        numpy_random.set_state(states["numpy"])
    elif "numpy" not in seeded:
        numpy_random.seed()
