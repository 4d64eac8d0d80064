"""The fork hooks Python code registers, recorded so the fork server can fork with libc's
fork(2) and run them itself.

CPython's os.fork() does costly work around fork(2) in the child (re-initialising the
interpreter's threads, locks and signal state, then every `os.register_at_fork` hook); for a
fork server with one thread most of that has nothing to do, and skipping it saves about a
tenth of a task's CPU (docs/performance.md). What the hooks do must still happen, so this
module, imported with ledgerflow (codec.py), wraps `os.register_at_fork` and keeps every hook
registered from then on (ledgerflow's own, and those of whatever the flow imports, e.g.
fsspec's). Hooks registered before it cannot be seen: `raw_fork_is_safe()` allows libc's
fork only when every module loaded before ledgerflow is the standard library's (whose
`after_in_child` hooks, those of `threading`, `random`, `logging` and `concurrent.futures`,
are run by hand; their `before` hooks only take locks no other thread of a one-thread
server can hold) or a packaging shim; otherwise the fork server uses os.fork.

Owner: taskpath (executors/forkserver.py is its one user).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

# (before, after_in_parent, after_in_child) as registered, in order.
_HOOKS: list[tuple[Callable[[], Any] | None, ...]] = []
_EARLY = frozenset(sys.modules)  # loaded before this module (before ledgerflow)
_SHIMS = ("__main__", "__mp_main__", "__editable__", "_distutils_hack", "_virtualenv", "ledgerflow")
_ORIGINAL = getattr(os, "register_at_fork", None)


def _recording(*, before: Callable[[], Any] | None = None,
               after_in_parent: Callable[[], Any] | None = None,
               after_in_child: Callable[[], Any] | None = None) -> None:  # fmt: skip
    assert _ORIGINAL is not None
    kwargs = {k: v for k, v in (("before", before), ("after_in_parent", after_in_parent),
                                ("after_in_child", after_in_child)) if v is not None}  # fmt: skip
    _ORIGINAL(**kwargs)  # validates the arguments as os.register_at_fork does
    _HOOKS.append((before, after_in_parent, after_in_child))
    if _PLAN:  # planned already: the plan takes this one in
        plan_after_in_child(_PLAN[0][1])


if _ORIGINAL is not None and getattr(_ORIGINAL, "__name__", "") != "_recording":
    os.register_at_fork = _recording  # type: ignore[assignment]


# after_in_child hook -> a predicate, true while the hook has nothing to do in a child forked
# now (idle_when).
_IDLE: dict[Callable[[], Any], Callable[[], bool]] = {}


def idle_when(hook: Callable[[], Any], predicate: Callable[[], bool]) -> None:
    """Declare that the `after_in_child` hook `hook` has nothing to do in a child forked
    while `predicate()` is true (e.g. codec's, which drops the parent's thread pool: idle
    while there is none). A fork server with one thread asks once, as it plans its forks
    (plan_after_in_child): it changes nothing the predicates read afterwards, so a hook idle
    then is idle at every fork, and its registration is left out whole (its `before` and
    `after_in_parent` hooks too: with one thread and an idle hook, they guard nothing). A
    task whose hooks are all left out runs no Python code for them at all."""
    _IDLE[hook] = predicate


def _idle(hook: Callable[[], Any] | None) -> bool:
    predicate = _IDLE.get(hook) if hook is not None else None
    if predicate is None:
        return False
    try:
        return bool(predicate())
    except Exception:  # noqa: BLE001 - unsure: run the hook
        return False


def raw_fork_is_safe() -> bool:
    """True when every fork hook of this process is known: recorded here, or the standard
    library's (modules loaded before ledgerflow are all the standard library's or shims)."""
    stdlib = getattr(sys, "stdlib_module_names", None)
    if stdlib is None or _ORIGINAL is None:
        return False
    for name in _EARLY:
        top = name.partition(".")[0]
        if top not in stdlib and not top.startswith(_SHIMS):
            return False
    return True


def run_before(one_thread: bool = False) -> None:
    """In the forking process, before fork(2): the recorded `before` hooks, last first
    (of the registrations run_after_in_child keeps: see plan_after_in_child)."""
    for before, _, _ in reversed(_registrations(one_thread)):
        _call(before)


def run_after_in_parent(one_thread: bool = False) -> None:
    for _, after, _ in _registrations(one_thread):
        _call(after)


def _registrations(one_thread: bool) -> list[tuple[Callable[[], Any] | None, ...]]:
    plan = _PLAN[0] if _PLAN else None
    if plan is not None and plan[0] == len(_HOOKS) and plan[1] == one_thread:
        return plan[3]
    return _after_in_child(one_thread)[1]


# The standard library's `after_in_child` hooks, by module: run by hand for the modules
# loaded before this one (their registrations were not seen), as os.fork would run them.
# The flag marks hooks that only make the child's locks and thread records usable after a
# fork from a process with other threads (a lock held by a thread the child does not have):
# forked from a process with one thread, the child's copies are exactly right already.
_STDLIB_AFTER_IN_CHILD = (
    ("threading", "_after_fork", True),
    ("random", "_inst.seed", False),
    ("logging", "_after_at_fork_child_reinit_locks", True),
    ("concurrent.futures.thread", "_global_shutdown_lock._at_fork_reinit", True),
)


def _stdlib_hook(module_name: str, path: str) -> Callable[[], Any] | None:
    target: Any = sys.modules.get(module_name)
    for part in path.split("."):
        target = getattr(target, part, None)
    return target


def run_after_in_child(one_thread: bool = False) -> None:
    """In the child: the standard library's hooks of modules loaded before this one (see
    _STDLIB_AFTER_IN_CHILD), then the recorded `after_in_child` hooks in order. With
    `one_thread` (the forking process had no other thread), the standard library's hooks
    that only reinitialise locks are left out (and the `before`/`after_in_parent` hooks
    registered with them: run_before takes no lock the child would then hold): measured,
    threading's alone cost a task 0.5 ms and 140 page faults, for nothing to do
    (docs/performance.md). The list is the one
    plan_after_in_child made in the forking process, while no hook was registered since."""
    plan = _PLAN[0] if _PLAN else None
    if plan is not None and plan[0] == len(_HOOKS) and plan[1] == one_thread:
        hooks = plan[2]
    else:
        hooks = _after_in_child(one_thread)[0]
    for hook in hooks:
        _call(hook)


# (len(_HOOKS), one_thread, the after-fork hooks a child runs, the registrations whose
# before/after_in_parent hooks the parent runs), listed once in the forking process (a fork
# server forks every task with the same hooks).
_PLAN: list[tuple[int, bool, list[Callable[[], Any]], list[tuple[Any, ...]]]] = []


def plan_after_in_child(one_thread: bool) -> None:
    """List the hooks run_before, run_after_in_parent and run_after_in_child will run, here,
    so that each fork only calls them. With `one_thread`, a registration whose child hook
    only reinitialises locks (logging's) is left out whole: its `before` takes the lock
    only so that the child's copy is in a known state, and with no other thread the lock is
    free at the fork anyway."""
    hooks, kept = _after_in_child(one_thread)
    _PLAN[:] = [(len(_HOOKS), one_thread, hooks, kept)]
    planned_child_hooks[0] = len(hooks)


# How many hooks the plan's run_after_in_child runs ([0] while there is no plan): a fork
# server's task skips the call when there are none. Kept current: a hook registered after
# planning is planned in at once.
planned_child_hooks: list[int] = [0]


def _after_in_child(one_thread: bool) -> tuple[list[Callable[[], Any]], list[tuple[Any, ...]]]:
    hooks: list[Callable[[], Any]] = []
    kept: list[tuple[Any, ...]] = []
    skip = []
    for module_name, path, locks_only in _STDLIB_AFTER_IN_CHILD:
        hook = _stdlib_hook(module_name, path)
        if one_thread and locks_only:
            skip.append(hook)
        elif module_name in _EARLY and hook is not None:
            hooks.append(hook)
    for registration in _HOOKS:
        after = registration[2]
        if after is not None and skip and after in skip:
            continue
        if one_thread and _idle(after):
            continue
        kept.append(registration)
        if after is not None:
            hooks.append(after)
    return hooks, kept


def one_thread() -> bool:
    """True when this process has one thread (Linux: /proc counts threads C code started
    too); False when it cannot tell."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _call(hook: Callable[[], Any] | None) -> None:
    """A hook's error is reported and the fork goes on, as os.fork does."""
    if hook is None:
        return
    try:
        hook()
    except Exception as e:  # noqa: BLE001
        sys.unraisablehook(_Unraisable(e, hook))  # type: ignore[arg-type]


class _Unraisable:
    def __init__(self, error: BaseException, hook: Callable[[], Any]):
        self.exc_type, self.exc_value = type(error), error
        self.exc_traceback, self.err_msg, self.object = error.__traceback__, None, hook
