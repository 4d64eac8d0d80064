"""Flow parameters: `Parameter`, `JSONType` and `IncludeFile`, as in Metaflow.

Each becomes a `--name` option of `python flow.py run` and an artifact of every task,
stored under the attribute name it is assigned to in the flow class. `Config` (configs.py)
is a Parameter too, settled before the run instead of given to `run`.

A flow class's other public attributes are its constants (`class_constants`, Metaflow's
rule): stored with the run's parameters, read by every task as artifacts.
"""

from __future__ import annotations

import json
import re
import weakref
from collections import namedtuple
from collections.abc import Callable
from types import FunctionType, MethodType, ModuleType
from typing import Any, ClassVar

from .exceptions import ParameterError

# What a deploy-time (callable) default receives, with Metaflow's field names.
ParameterContext = namedtuple(
    "ParameterContext", "flow_name user_name parameter_name logger ds_type configs"
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Options that `run` already has; a Parameter may not take their names.
RESERVED_PARAMETER_NAMES = {
    "params", "tag", "tags", "max-workers", "max_workers", "executor", "run-id-file",
    "run_id_file", "max-num-splits", "max_num_splits", "help", "db", "quiet", "namespace",
    "origin-run-id", "origin_run_id", "with", "debug",
}  # fmt: skip


class JSONTypeClass:
    """The type of a Parameter whose value is JSON text (`type=JSONType`)."""

    name = "JSON"

    def convert(self, value: Any, param: Any = None, ctx: Any = None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as e:
            import click

            raise click.BadParameter(f"{value!r} is not valid JSON ({e})", ctx, param) from None

    def click_type(self) -> Any:
        """A click type for the command line (click is imported only when one is built)."""
        import click

        outer = self

        class _ClickJSON(click.ParamType):
            name = "JSON"

            def convert(self, value: Any, param: Any, ctx: Any) -> Any:
                return outer.convert(value, param, ctx)

        return _ClickJSON()

    def __repr__(self) -> str:
        return "JSON"


JSONType = JSONTypeClass()


class Parameter:
    """A run-time parameter of a flow: `alpha = Parameter('alpha', default=0.01)`."""

    IS_INCLUDE_FILE = False
    IS_CONFIG_PARAMETER = False

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: Any = None,
        help: str | None = None,
        required: bool | None = None,
        show_default: bool = True,
        **kwargs: Any,
    ):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ParameterError(
                f"Parameter name {name!r} is not valid; use letters, digits, '_' and '-'"
            )
        if name in RESERVED_PARAMETER_NAMES:
            raise ParameterError(
                f"Parameter name '{name}' is reserved by the run command; choose another name"
            )
        self.name = name
        self.default = default
        self.help = help
        self.required = bool(required)
        self.show_default = show_default
        # Metaflow's `separator`: the command-line string is split into a list of strings.
        self.separator = kwargs.pop("separator", None)
        self.kwargs = kwargs
        self._declared_type = type
        self.type = self._resolve_type(type, default)
        if self.separator is not None and not (
            self.type is str and (default is None or isinstance(default, str) or callable(default))
        ):
            raise ParameterError(
                f"Parameter '{name}': separator= is only allowed for string parameters; "
                "drop type= or separator="
            )

    @staticmethod
    def _resolve_type(declared: Any, default: Any) -> Any:
        if declared is not None:
            return declared
        if isinstance(default, bool):
            return bool
        if isinstance(default, (int, float, str)):
            return type(default)
        if isinstance(default, (dict, list)):
            return JSONType
        return str

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        # On the class, or on a flow outside a task: the Parameter itself. In a task: the
        # run's value, loaded once (then found in the instance __dict__ first).
        state = None if obj is None else obj.__dict__.get("_lf")
        attr = getattr(self, "attr", None)
        if state is None or attr is None or attr not in state.refs or state.load is None:
            return self
        value = state.load(state.refs[attr].sha)
        obj.__dict__[attr] = value
        return value

    def click_type(self) -> Any:
        import click

        if self.type in (str, int, float, bool):
            return {str: click.STRING, int: click.INT, float: click.FLOAT, bool: click.BOOL}[
                self.type
            ]
        if isinstance(self.type, JSONTypeClass):
            return self.type.click_type()
        return self.type

    def default_value(self, flow_name: str | None = None) -> Any:
        """The default as the step sees it (JSON defaults given as text are parsed). A
        callable default is Metaflow's deploy-time function: it gets a ParameterContext."""
        default = self.default
        if callable(default):
            default = self._call_default(default, flow_name)
        if self.type is JSONType and isinstance(default, str):
            return json.loads(default)
        return default

    def _call_default(self, fun: Callable[..., Any], flow_name: str | None) -> Any:
        from .current import get_username

        context = ParameterContext(flow_name, get_username(), self.name, print, "ledger", None)
        # How many arguments it takes decides the call, so that a TypeError raised inside
        # the function is reported as what it is (not as a missing `ctx`).
        count = _positional_count(fun)
        try:
            if count == 0:
                return fun()
            if count == 1:
                return fun(context)
            return fun(context, False)  # Metaflow's (ctx, deploy_time) form
        except Exception as e:
            raise ParameterError(
                f"Parameter '{self.name}': its default function {_fun_name(fun)} raised "
                f"{type(e).__name__}: {e}; fix the function or pass --{self.name}"
            ) from e

    def option(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """The click option for `run`."""
        import click

        has_default = self.default is not None
        # A default read from a config (`default=cfg.alpha`) is known only once the configs
        # are settled, after the options are made: its type is then looked up late.
        late = getattr(type(self.default), "_lf_delayed", False)
        return click.option(
            f"--{self.name}",
            self.name.replace("-", "_"),
            type=_LateType(self) if late else self.click_type(),
            default=None,
            required=self.required and not has_default,
            envvar=self.envvars(),
            help=(self.help or "") + (f"  [default: {self.default!r}]" if has_default else ""),
        )

    def resolve(self, given: Any, flow_name: str | None = None) -> Any:
        """The parameter's value for a run, from the command line value (None if not given).
        A default goes through the parameter's type as a given value does, as click (and so
        Metaflow) converts it: `default="5", type=int` is 5, `default="x"` a usage error."""
        if given is not None:
            return self.split(given)
        default = self.default_value(flow_name)
        if default is not None and self.type in (str, int, float, bool):
            import click

            try:
                default = self.click_type().convert(default, None, None)
            except click.BadParameter as e:
                e.param_hint = f"'--{self.name}'"
                raise
        return self.split(default)

    def split(self, value: Any) -> Any:
        """Metaflow's `separator=`: a non-empty string value becomes a list of strings."""
        if self.separator and isinstance(value, str) and value:
            return value.split(self.separator)
        return value

    def envvars(self) -> list[str]:
        """Environment variables that give the value when the option is not on the command
        line: LEDGERFLOW_RUN_<NAME>, then Metaflow's METAFLOW_RUN_<NAME>."""
        key = self.name.replace("-", "_").upper()
        return [f"LEDGERFLOW_RUN_{key}", f"METAFLOW_RUN_{key}"]

    def from_environment(self) -> str | None:
        """The value an environment variable gives, if any."""
        import os

        for var in self.envvars():
            if var in os.environ:
                return os.environ[var]
        return None

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, default={self.default!r})"


class IncludeFile(Parameter):
    """A parameter naming a local file whose content is stored as the artifact."""

    IS_INCLUDE_FILE = True

    def __init__(
        self,
        name: str,
        required: bool | None = None,
        is_text: bool = True,
        encoding: str = "utf-8",
        help: str | None = None,
        default: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(name, default=default, type=str, help=help, required=required, **kwargs)
        self.is_text = is_text
        self.encoding = encoding

    def click_type(self) -> Any:
        import click

        return click.Path(dir_okay=False)

    def resolve(self, given: Any, flow_name: str | None = None) -> Any:
        path = given if given is not None else self.default
        if path is None:
            return None
        import click

        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise click.BadParameter(
                f"cannot read {path}: {e.strerror}", param_hint=f"'--{self.name}'"
            ) from None
        if not self.is_text:
            return data
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError:
            raise click.BadParameter(
                f"{path} is not {self.encoding} text; declare IncludeFile(..., is_text=False)",
                param_hint=f"'--{self.name}'",
            ) from None


def _positional_count(fun: Callable[..., Any]) -> int | None:
    """How many positional arguments `fun` accepts (None: any number, or unknown)."""
    import inspect

    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        return None
    count = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _fun_name(fun: Callable[..., Any]) -> str:
    name = getattr(fun, "__name__", None) or type(fun).__name__
    return "(a lambda)" if name == "<lambda>" else f"'{name}'"


def flow_parameters(flow_cls: type) -> list[tuple[str, Parameter]]:
    """(attribute name, Parameter) pairs of a flow class, in a stable order."""
    found = []
    for attr in dir(flow_cls):
        if attr.startswith("__"):
            continue
        value = getattr(flow_cls, attr, None)
        if isinstance(value, Parameter):
            found.append((attr, value))
    return found


def class_constants(flow_cls: type) -> dict[str, Any]:
    """The flow class's constants, by Metaflow's rule: public class attributes that are not
    Parameters and not methods, properties or classes. Metaflow stores them as artifacts
    every task can read, and a step that assigns one gets an AttributeError."""
    cached = _CONSTANTS.get(flow_cls)
    if cached is not None:
        return cached
    found: dict[str, Any] = {}
    for name in dir(flow_cls):
        if name.startswith("_") or name in _NOT_CONSTANTS:
            continue
        try:
            value = getattr(flow_cls, name)
        except Exception:  # noqa: BLE001, S112 - a descriptor refusing class access
            continue
        if isinstance(value, (MethodType, FunctionType, property, type, ModuleType,
                              Parameter, Unsupported)):  # fmt: skip
            continue
        found[name] = value
    _CONSTANTS[flow_cls] = found
    return found


# FlowSpec's own surface (Metaflow's _NON_PARAMETERS): never taken for a constant.
_NOT_CONSTANTS = frozenset({"cmd", "foreach_stack", "index", "input", "script_name", "name"})
_CONSTANTS: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()


class Unsupported:
    """A placeholder for a Metaflow feature ledgerflow lacks, which the flow command refuses
    with one line before anything runs (see decorators.unsupported_features), instead of a
    traceback at import. (Config and config_expr, its first users, are supported now:
    configs.py.)"""

    created: ClassVar[list[Unsupported]] = []  # every one made in this process, in order

    def __init__(self, feature: str, args: tuple[Any, ...], hint: str):
        self.feature = feature
        self.args = args
        self.hint = hint
        Unsupported.created.append(self)

    def message(self, where: str) -> str:
        shown = ", ".join(repr(a) for a in self.args)
        return (f"{where} uses {self.feature}({shown}), Metaflow's configs (2.13+), which "
                f"ledgerflow does not support; {self.hint}")  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self  # config.a.b reads at class level stay placeholders

    def __repr__(self) -> str:
        return f"<unsupported {self.feature}>"


def _late_type_class() -> Any:
    import click

    class LateType(click.ParamType):
        """The click type of a parameter whose default comes from a config, decided when a
        value is converted (the configs are settled by then)."""

        name = "late"

        def __init__(self, param: Parameter):
            self.param = param

        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            return self.param.click_type().convert(value, param, ctx)

    return LateType


def _LateType(param: Parameter) -> Any:  # noqa: N802 - reads as the class it makes
    return _late_type_class()(param)
