"""`FlowSpec`: the base class users subclass, with Metaflow's step-time surface
(`self.next`, `self.input`, `self.index`, `self.foreach_stack()`, `merge_artifacts`).

A flow instance lives for one task. Artifacts from the parent task are loaded lazily on
first access (`__getattr__`), each as a fresh copy decoded from stored bytes, so tasks never
share mutable objects. The instance's own `__dict__` holds only user attributes; our
per-task state sits in `_lf` (see `TaskState`).

Class-level constants follow Metaflow (`class_constants`): the runtime stores them with the
run's parameters, every task reads them as artifacts, and a step may not assign them.
"""

from __future__ import annotations

import sys
from collections import namedtuple
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from . import codec
from .exceptions import (
    ArtifactError,
    InvalidNextException,
    MetaflowException,
    MissingInMergeArtifactsException,
    ParameterAssignmentError,
    UnhandledInMergeArtifactsException,
)
from .parameters import class_constants
from .records import ArtifactRecord
from .structs import builder, field, struct

ForeachFrame = namedtuple("ForeachFrame", "step var num_splits index value")


@struct
class Transition:
    """What `self.next()` asked for."""

    targets: list[str]
    foreach: str | None = None
    condition: str | None = None
    num_splits: int | None = None
    foreach_values: list[str] | None = None  # each item named (foreach_value_text)
    # Each item encoded on its own (codec.encode), for its task's `self.input`: a task of a
    # wide foreach then decodes its item, not the whole list. None past ITEMS_BUDGET.
    foreach_items: list[tuple[str, bytes]] | None = None
    lineno: int | None = None


@struct
class TaskState:
    """Per-task state of a flow instance. Never persisted."""

    step_name: str
    graph: Any
    refs: dict[str, ArtifactRecord] = field(factory=dict)
    load: Callable[[str], Any] | None = None  # sha -> fresh value
    foreach_stack: list[ForeachFrame] = field(factory=list)
    param_names: frozenset[str] = frozenset()
    transition: Transition | None = None
    max_num_splits: int = 100
    cached_input: dict[int, Any] = field(factory=dict)
    input_item: tuple[str, bytes] | None = None  # the innermost foreach's item, encoded
    is_input_view: bool = False


# A task in a process of its own makes these once each: with a plain attribute store per
# field rather than the struct's constructor (structs.builder says why).
new_task_state = builder(TaskState, "step_name graph refs load foreach_stack param_names "
                                    "max_num_splits input_item")  # fmt: skip
new_transition = builder(Transition, "targets lineno")


def _no_command_line(flow_cls: type) -> Any:
    raise MetaflowException(
        f"{flow_cls.__name__}() has no command line to run: import it "
        "from ledgerflow, whose package face hands FlowSpec its command line"
    )


# What `FlowSpec()` runs from a flow's script: its command line (cli/flow_cli.py). The
# command line sits above every module a flow is made of, so this module does not import
# it: the package face (ledgerflow/__init__.py), which Python loads before any module of
# the package, hands it in with `use_command_line`.
_command_line: Callable[[type], Any] = _no_command_line


def use_command_line(main: Callable[[type], Any]) -> None:
    """Set what `FlowSpec()` runs: the package face calls this once, on import."""
    global _command_line
    _command_line = main


class FlowSpec:
    """Base class of a flow. Instantiating a subclass from a script runs its command line."""

    # Names below are the FlowSpec surface; an artifact may not take them.
    _RESERVED = frozenset(
        {"next", "input", "index", "foreach_stack", "merge_artifacts", "name", "script_name"}
    )

    def __init__(self, use_cli: bool = True):
        object.__setattr__(self, "_lf", None)
        if use_cli:
            if _in_notebook_kernel():
                # The kernel's argv (-f kernel.json) is no flow command line.
                raise MetaflowException(
                    f"{type(self).__name__}() starts the flow's command line, which a notebook "
                    f"does not have; run it with NBRunner({type(self).__name__}).nbrun()"
                )
            from . import rng

            rng.module_loaded()
            _command_line(type(self))

    # -- construction for a task -------------------------------------------------------

    @classmethod
    def _for_task(cls, state: TaskState) -> FlowSpec:
        self = cls.__new__(cls)
        object.__setattr__(self, "_lf", state)
        return self

    # -- artifacts ---------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the name is an artifact not loaded yet.
        state = object.__getattribute__(self, "_lf")
        if state is not None and name in state.refs and state.load is not None:
            value = state.load(state.refs[name].sha)
            object.__setattr__(self, name, value)
            return value
        where = f" in step '{state.step_name}'" if state is not None else ""
        raise AttributeError(
            f"Flow {type(self).__name__} has no attribute '{name}'{where}: no artifact "
            f"'{name}' reached this step"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        state = self._lf
        if state is not None and not name.startswith("_"):
            if name in self._RESERVED:
                raise ArtifactError(
                    f"Step '{state.step_name}' sets self.{name}, but '{name}' is reserved by "
                    f"FlowSpec; rename the artifact (e.g. self.{name}_value)"
                )
            if name in state.param_names:
                raise ParameterAssignmentError(
                    f"Step '{state.step_name}' sets self.{name}, but '{name}' is a Parameter "
                    f"and parameters are read-only; store the new value under another name"
                )
            if hasattr(type(self), name) and name in class_constants(type(self)):
                # Metaflow: "Flow level attributes and Parameters are not modifiable".
                raise ParameterAssignmentError(
                    f"Step '{state.step_name}' sets self.{name}, but '{name}' is a class-level "
                    f"constant of {type(self).__name__} and flow-level attributes are not "
                    "modifiable; store the new value under another name"
                )
            if state.is_input_view:
                raise ArtifactError(
                    f"Cannot set '{name}' on a join input; set it on self in the join step"
                )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        state = self._lf
        if state is not None and name in state.refs:
            state.refs.pop(name)
        if name in self.__dict__:
            object.__delattr__(self, name)

    def _peek(self, name: str) -> Any:
        """An artifact's value without caching it on self, so it is not stored again."""
        if name in self.__dict__:
            return self.__dict__[name]
        state = self._lf
        if state is not None and name in state.refs and state.load is not None:
            return state.load(state.refs[name].sha)
        return getattr(self, name)

    def _has_artifact(self, name: str) -> bool:
        """hasattr() without loading anything."""
        state = self._lf
        return (
            name in self.__dict__
            or (state is not None and name in state.refs)
            or hasattr(type(self), name)
        )

    @property
    def name(self) -> str:
        """The flow's name (its class name)."""
        return type(self).__name__

    @property
    def _current_step(self) -> str | None:
        """The running step's name (Metaflow's attribute, read by some flows)."""
        state = self._lf
        return state.step_name if state is not None else None

    @property
    def _graph(self) -> Any:
        """The flow's graph: `self._graph[step].out_funcs`, `.type`, ... as in Metaflow."""
        state = self._lf
        if state is not None and state.graph is not None:
            return state.graph
        from .graph import flow_graph  # the AST parser loads when a flow first asks

        return flow_graph(type(self))

    @property
    def _foreach_stack(self) -> list[ForeachFrame]:
        """Metaflow's internal artifact, inside a step too: one ForeachFrame(step, var,
        num_splits, index, value) per enclosing foreach, outermost first."""
        state = self._lf
        return list(state.foreach_stack) if state is not None else []

    @property
    def script_name(self) -> str:
        import os

        return os.path.basename(sys.argv[0])

    # -- foreach -----------------------------------------------------------------------

    @property
    def index(self) -> int | None:
        """The index of this task in the innermost foreach, None outside foreach."""
        stack = self._lf.foreach_stack if self._lf else []
        return stack[-1].index if stack else None

    @property
    def input(self) -> Any:
        """The item of the innermost foreach this task processes, None outside foreach."""
        return self._find_input()

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """(index, num_splits, value) for each enclosing foreach, outermost first."""
        stack = self._lf.foreach_stack if self._lf else []
        return [(f.index, f.num_splits, self._find_input(i)) for i, f in enumerate(stack)]

    def _find_input(self, stack_index: int | None = None) -> Any:
        state = self._lf
        if state is None or not state.foreach_stack:
            return None
        if stack_index is None:
            stack_index = len(state.foreach_stack) - 1
        if (
            stack_index not in state.cached_input
            and state.input_item is not None
            and (stack_index == len(state.foreach_stack) - 1)
        ):
            state.cached_input[stack_index] = codec.decode(*state.input_item)
        if stack_index not in state.cached_input:
            frame = state.foreach_stack[stack_index]
            try:
                values = self._peek(frame.var)
            except AttributeError:
                # e.g. a join of an inner foreach asking for the outer value
                state.cached_input[stack_index] = None
            else:
                try:
                    state.cached_input[stack_index] = values[frame.index]
                except TypeError:
                    item = next(islice(values, frame.index, frame.index + 1))
                    state.cached_input[stack_index] = item
        return state.cached_input[stack_index]

    # -- transitions ---------------------------------------------------------------------

    def next(self, *dsts: Callable[..., Any] | dict[Any, Any], **kwargs: Any) -> None:
        """Name the step(s) that follow this one. Must be the last statement of a step."""
        state = self._lf
        if state is None:
            raise InvalidNextException(
                "self.next() was called outside a running step; call it as the last "
                "statement of a @step method"
            )
        step = state.step_name
        lineno = sys._getframe(1).f_lineno
        if state.transition is not None:
            raise InvalidNextException(
                f"Step '{step}' called self.next() more than once (again at line {lineno}); "
                "call it exactly once, as the last statement of the step",
                lineno,
            )
        foreach = condition = None
        if kwargs:
            foreach = kwargs.pop("foreach", None)
            condition = kwargs.pop("condition", None)
            kwargs.pop("num_parallel", None)
        if kwargs:
            raise InvalidNextException(
                f"Step '{step}' passes unknown argument(s) {', '.join(kwargs)} to self.next(); "
                "only foreach= and condition= are supported",
                lineno,
            )
        if condition is not None:
            transition = self._switch_transition(step, dsts, condition, lineno)
        else:
            targets = []
            for dst in dsts:  # (a loop: a comprehension is a function object made per call)
                targets.append(self._step_name_of(step, dst, lineno))
            transition = new_transition(targets, lineno)
            if foreach is not None:
                self._fill_foreach(step, transition, foreach, lineno)
        expected = state.graph[step].out_funcs if state.graph is not None else None
        if expected is not None and condition is None and transition.targets != list(expected):
            raise InvalidNextException(
                f"Step '{step}' called self.next({', '.join('self.' + t for t in transition.targets)})"
                f" at line {lineno}, but its last statement says "
                f"self.next({', '.join('self.' + t for t in expected)}); make the transition "
                "static (one self.next() as the last statement)",
                lineno,
            )
        state.transition = transition

    def _step_name_of(self, step: str, dst: Any, lineno: int) -> str:
        func = getattr(dst, "__func__", None)
        name = getattr(func, "__name__", None)
        if (
            func is None
            or getattr(dst, "__self__", None) is not self
            or not getattr(func, "is_step", False)
        ):
            raise InvalidNextException(
                f"Step '{step}' passes {dst!r} to self.next(); pass steps of this flow, "
                "like self.next(self.end)",
                lineno,
            )
        return str(name)

    def _switch_transition(
        self, step: str, dsts: tuple[Any, ...], condition: str, lineno: int
    ) -> Transition:
        if len(dsts) != 1 or not isinstance(dsts[0], dict):
            raise InvalidNextException(
                f"Step '{step}' uses condition= but does not pass one dict of cases to "
                'self.next(); write self.next({"a": self.a, "b": self.b}, condition="var")',
                lineno,
            )
        cases = dsts[0]
        if not self._has_artifact(condition):
            raise InvalidNextException(
                f"Step '{step}' switches on self.{condition}, which is not set; assign "
                f"self.{condition} before self.next()",
                lineno,
            )
        value = getattr(self, condition)
        if value not in cases:
            raise InvalidNextException(
                f"Step '{step}' switches on self.{condition} = {value!r}, which matches no "
                f"case ({', '.join(repr(k) for k in cases)}); add a case or fix the value",
                lineno,
            )
        target = self._step_name_of(step, cases[value], lineno)
        return Transition([target], condition=condition, lineno=lineno)

    def _fill_foreach(self, step: str, transition: Transition, var: str, lineno: int) -> None:
        if len(transition.targets) != 1:
            raise InvalidNextException(
                f"Step '{step}' uses foreach= with {len(transition.targets)} targets; a foreach "
                "goes to exactly one step",
                lineno,
            )
        if not self._has_artifact(var):
            raise InvalidNextException(
                f"Step '{step}' does a foreach over self.{var}, which is not set; assign "
                f"self.{var} (a list or other iterable) before self.next()",
                lineno,
            )
        values = getattr(self, var)
        try:
            num_splits = len(values)
        except TypeError:
            try:
                values = list(values)
            except TypeError:
                raise InvalidNextException(
                    f"Step '{step}' does a foreach over self.{var}, a "
                    f"{type(values).__name__}, which is not iterable; make it a list",
                    lineno,
                ) from None
            num_splits = len(values)
        if num_splits == 0:
            raise InvalidNextException(
                f"Foreach over self.{var} in step '{step}' produced zero splits; make sure "
                f"self.{var} is not empty",
                lineno,
            )
        limit = self._lf.max_num_splits
        if num_splits > limit:
            raise InvalidNextException(
                f"Foreach over self.{var} in step '{step}' has {num_splits} splits, more than "
                f"--max-num-splits allows ({limit}); run with --max-num-splits {num_splits}",
                lineno,
            )
        transition.foreach = var
        transition.num_splits = num_splits
        transition.foreach_values = [foreach_value_text(v)
                                     for v in islice(iter(values), num_splits)]  # fmt: skip
        transition.foreach_items = _encoded_items(values, num_splits)

    # -- joins ---------------------------------------------------------------------------

    def merge_artifacts(
        self,
        inputs: Inputs,
        exclude: list[str] | None = None,
        include: list[str] | None = None,
    ) -> None:
        """Copy artifacts from the join's inputs onto self, following Metaflow's rules.

        Artifacts set in the join already are kept. An artifact with different values
        across inputs raises UnhandledInMergeArtifactsException; a name in `include`
        present in no input raises MissingInMergeArtifactsException. On error nothing is set.
        """
        state = self._lf
        include = list(include or [])
        exclude = list(exclude or [])
        node = state.graph[state.step_name] if state and state.graph is not None else None
        if node is None or node.type != "join":
            step = state.step_name if state else "?"
            raise MetaflowException(
                f"merge_artifacts can only be called in a join and step '{step}' is not a "
                "join; call it in a step that takes `inputs`"
            )
        if include and exclude:
            raise MetaflowException(
                "`exclude` and `include` are mutually exclusive in merge_artifacts; pass one"
            )
        to_merge: dict[str, ArtifactRecord] = {}
        unresolved: list[str] = []
        for inp in inputs:
            for var, ref in inp._lf.refs.items():
                if self._has_artifact(var):
                    continue
                if include:
                    if var not in include:
                        continue
                elif var in exclude or var.startswith("_"):
                    # Internal artifacts are never merged implicitly (see Metaflow).
                    continue
                previous = to_merge.setdefault(var, ref)
                if previous.sha != ref.sha and var not in unresolved:
                    unresolved.append(var)
        missing = [v for v in include if v not in to_merge and not self._has_artifact(v)]
        if unresolved:
            raise UnhandledInMergeArtifactsException(
                f"Step '{state.step_name}' cannot merge the following artifacts due to them "
                f"having conflicting values: [{', '.join(unresolved)}]. To remedy this issue, "
                "be sure to explicitly set those artifacts (using self.<artifact_name> = ...) "
                "prior to calling merge_artifacts.",
                unresolved,
            )
        if missing:
            raise MissingInMergeArtifactsException(
                f"Step '{state.step_name}' specifies that [{', '.join(include)}] should be "
                f"merged but [{', '.join(missing)}] are not present. To remedy this issue, "
                "make sure that the values specified in only come from at least one branch",
                missing,
            )
        for var, ref in to_merge.items():
            state.refs[var] = ref

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of the artifacts available to this task."""
        names = set(self._lf.refs) if self._lf else set()
        names |= {k for k in self.__dict__ if not k.startswith("_")}
        for name in sorted(names):
            if not name.startswith("_"):
                yield name, getattr(self, name)

    def __str__(self) -> str:
        """Metaflow's form, which @catch prints: `<flow F step divide[0] (input: 0)>`."""
        state = self._lf
        if state is None:
            return f"<flow {self.name}>"
        index = ",".join(str(frame.index) for frame in state.foreach_stack)
        if not index:
            return f"<flow {self.name} step {state.step_name}>"
        try:
            item = self.input
        except Exception:  # noqa: BLE001 - a name for a message: the item may be unreadable
            item = None
        if item is None:
            return f"<flow {self.name} step {state.step_name}[{index}]>"
        text = _str_or_type(item)
        text = text if len(text) <= 20 else text[:20] + "..."
        return f"<flow {self.name} step {state.step_name}[{index}] (input: {text})>"


class Inputs:
    """The inputs of a join step: iterate in foreach order, `len()`, `inputs[i]`, and
    `inputs.stepname` for a static branch's input."""

    def __init__(self, flows: list[FlowSpec]):
        self._flows = flows
        self._by_step = {f._lf.step_name: f for f in flows}

    def __getattr__(self, name: str) -> FlowSpec:
        by_step = self.__dict__.get("_by_step", {})
        if name in by_step:
            return by_step[name]
        raise AttributeError(
            f"this join has no input from a step named '{name}'; inputs come from "
            f"{', '.join(sorted(by_step))}"
        )

    def __iter__(self) -> Iterator[FlowSpec]:
        return iter(self._flows)

    def __len__(self) -> int:
        return len(self._flows)

    def __getitem__(self, index: int) -> FlowSpec:
        return self._flows[index]


def _in_notebook_kernel() -> bool:
    """True inside a Jupyter/IPython kernel (not a plain `python flow.py`)."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


# The runtime holds a foreach's encoded items until its tasks have started: above this
# total, tasks read their item from the stored list instead (as Metaflow's do).
ITEMS_BUDGET = 4 * 1024 * 1024


def _encoded_items(values: Any, count: int) -> list[tuple[str, bytes]] | None:
    """Each task's `self.input`, encoded: what `values[i]` gives (as _find_input reads it:
    a dict's value at key i, not its i-th key), or the i-th item of what has no indexing."""
    items, total = [], 0
    try:
        try:
            chosen = [values[i] for i in range(count)]
        except TypeError:  # not indexable (a set, a generator's list...): in iteration order
            chosen = list(islice(iter(values), count))
        for value in chosen:
            encoding, raw = codec.encode(value)
            total += len(raw)
            if total > ITEMS_BUDGET:
                return None
            items.append((encoding, raw))
    except Exception:  # noqa: BLE001 - an item that cannot be encoded alone: read the list
        return None
    return items


def stored_constants(flow_cls: type) -> dict[str, Any]:
    """class_constants, each checked to be storable, before a run starts: one that is not
    (a lock, a connection) is refused in one line, as Metaflow refuses it at its start."""
    constants = class_constants(flow_cls)
    for name, value in constants.items():
        try:
            codec.encode(value)
        except Exception as e:  # noqa: BLE001 - any encoding failure is the user's value
            raise ArtifactError(
                f"{flow_cls.__name__}.{name} (a {codec.type_name(value)}) cannot be stored: "
                f"class-level attributes are artifacts, as in Metaflow ({type(e).__name__}: "
                f"{e}); make it private ({flow_cls.__name__}._{name}) or a module-level name"
            ) from None
    return constants


def _str_or_type(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - user __str__ may raise anything
        return f"<{type(value).__name__}>"


# Metaflow's MAXIMUM_FOREACH_VALUE_CHARS: how much of an item `_foreach_values` and each
# foreach frame's `value` keep.
FOREACH_VALUE_CHARS = 30


def foreach_value_text(item: Any) -> str:
    """How a foreach item is named in `_foreach_values` and `_foreach_stack`, as Metaflow
    names it: str() of a string, int, float or bool, else its reprlib repr; at most 30
    characters. User __repr__ methods may raise: never propagate."""
    import reprlib

    if isinstance(item, (str, int, float, bool)):
        text = _str_or_type(item)
    else:
        try:
            text = reprlib.Repr().repr(item)
        except Exception:  # noqa: BLE001 - user __repr__ may raise anything
            text = f"<{type(item).__name__}>"
    return text[:FOREACH_VALUE_CHARS]
