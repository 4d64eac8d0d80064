"""Metaflow's configs (2.13+): `Config`, and applying the values of a flow's configs to its
class before it runs (`ConfigValue` and `config_expr` are in config_values.py).

    class TrainFlow(FlowSpec):
        cfg = Config("cfg", default="config.json")          # or default_value={...}

        @resources(cpu=cfg.cpu)                              # read when the flow starts
        @step
        def start(self):
            print(self.cfg.model.name)                       # a read-only ConfigValue

A config's value is settled once, before anything runs, from `--config NAME FILE` or
`--config-value NAME JSON` (top-level options of the flow command, as in Metaflow), else
from its default; `parser=` turns the text into a dict (JSON otherwise). Decorator
attributes and Parameter defaults that read a config (`cfg.cpu`, `config_expr("...")`) are
placeholders (`DelayEvaluator`) until `apply_configs` gives the class its values: then
they are evaluated, and each decorator is checked as if written with the plain value.

Values are recorded as the run's parameters are: an artifact of every task under the
attribute's name (a plain dict, JSON-encoded: `run.data.cfg`, as Metaflow stores them) and
in the run row's `params`. `resume` reuses the origin run's values. A task in a fresh
interpreter (`--executor spawn`) gets the values through $LEDGERFLOW_FLOW_CONFIGS and
applies them when it loads the flow class (the hook in flowclasses.load_flow_class).
"""

from __future__ import annotations

import collections.abc
import importlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .config_values import (
    UNPACK_KEY,
    ConfigError,
    ConfigValue,
    DelayEvaluator,
    _as_seen,
    config_expr,
    has_delayed,
)
from .decorators import _plain, exported_per_flow
from .exceptions import LedgerflowError, ParameterError
from .parameters import Parameter

__all__ = ["Config", "ConfigValue", "DelayEvaluator", "apply_configs", "config_expr",
           "flow_configs", "settle_values"]  # fmt: skip

ENV_CONFIGS = "LEDGERFLOW_FLOW_CONFIGS"  # {flow class name: {config name: value}}, for spawn
_NOT_CONFIG_KEYS = frozenset({"is_step", "decorators", "attr", "name", "default"})


class Config(Parameter, collections.abc.Mapping):  # type: ignore[type-arg]
    """A configuration of the flow (Metaflow's `Config`): settled before the run starts,
    usable in decorators (`cfg.x` at class level) and in steps (`self.cfg.x`). Give
    `default=` a file path or `default_value=` a value (a dict, JSON text, or a function of
    the ParameterContext); `parser=` (a function or 'package.module.function') turns the
    text into a dict; `plain=True` keeps whatever the parser returns as it is."""

    IS_CONFIG_PARAMETER = True

    def __init__(
        self,
        name: str,
        default: str | Callable[..., str] | None = None,
        default_value: Any = None,
        help: str | None = None,
        required: bool | None = None,
        parser: str | Callable[[str], Any] | None = None,
        plain: bool = False,
        **kwargs: Any,
    ):
        if default is not None and default_value is not None:
            raise ParameterError(
                f"Config '{name}': give default= (a file) or default_value= (a value), not both"
            )
        super().__init__(name, default=None, type=str, help=help, required=required, **kwargs)
        self.default_is_file = default is not None
        self.config_default = default if default is not None else default_value
        self.parser = parser
        self.plain = plain

    # -- `cfg.x` and `**cfg` at class level stand for the value to come
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in _NOT_CONFIG_KEYS:
            raise AttributeError(name)
        return getattr(DelayEvaluator(self.name), name)

    def __getitem__(self, key: Any) -> Any:
        return DelayEvaluator(self.name)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole)

    def __len__(self) -> int:
        return 1

    @property
    def _whole(self) -> DelayEvaluator:
        whole = self.__dict__.get("_delayed")
        if whole is None:
            whole = self.__dict__["_delayed"] = DelayEvaluator(self.name)
        return whole

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = super().__get__(obj, owner)
        if value is self:  # not in a task: the value the class was given, if any
            values = getattr(type(obj), "_lf_config_values", None) or {}
            if self.name not in values:
                return self
            value = values[self.name]
        seen = self.seen(value)
        attr = getattr(self, "attr", None)
        if attr is not None and attr in obj.__dict__:
            obj.__dict__[attr] = seen  # what later reads find first (Parameter caches there)
        return seen

    def seen(self, value: Any) -> Any:
        """The value as a step sees it: a ConfigValue (plain=True: as the parser gave it)."""
        return value if self.plain or value is None else _as_seen(value)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"Config({self.name!r})"

    # -- settling the value
    def value_from(self, text: str | None, source: str, flow_name: str) -> Any:
        """The value from a file's or an option's text (None: no text)."""
        if text is None:
            return None
        parser = _parser(self.parser, self.name) if self.parser is not None else None
        if parser is not None:
            try:
                value = parser(text)
            except Exception as e:  # noqa: BLE001 - whatever the user's parser raises
                raise ConfigError(
                    f"config '{self.name}': its parser failed on {source} ({type(e).__name__}: {e})"
                ) from None
            if not self.plain and not isinstance(value, collections.abc.Mapping):
                raise ConfigError(
                    f"config '{self.name}': its parser returned a {type(value).__name__}, not "
                    "a dict; return a dict or declare the Config with plain=True"
                )
            return _plain_value(value) if not self.plain else value
        if self.plain:
            return text
        try:
            value = json.loads(text)
        except ValueError as e:
            raise ConfigError(
                f"config '{self.name}': {source} is not valid JSON ({e}); fix it, or give the "
                "Config a parser="
            ) from None
        if not isinstance(value, dict):
            raise ConfigError(
                f"config '{self.name}': {source} holds a {type(value).__name__}, not a JSON "
                "object; a config is a dict (or declare it plain=True)"
            )
        return value

    def default_text(self, flow_name: str) -> tuple[str | None, str]:
        """The default's text and where it came from ('' text: no default)."""
        default = self.config_default
        if callable(default):
            default = self._call_default(default, flow_name)
        if default is None:
            return None, ""
        if self.default_is_file:
            return _read(str(default), self.name, "default file"), f"default file {default}"
        if isinstance(default, (dict, list)):
            return json.dumps(default), "its default_value"
        return str(default), "its default_value"


def _plain_value(value: Any) -> Any:
    return ConfigValue._to_dict(value)


def _read(path: str, name: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(
            f"config '{name}': cannot read {what} {path} ({e.strerror}); check the path "
            "(relative paths start from the current directory)"
        ) from None


def _parser(parser: Any, name: str) -> Callable[[str], Any]:
    if callable(parser):
        return parser  # type: ignore[no-any-return]
    text = str(parser)
    if text.startswith("."):
        text = "ledgerflow" + text
    module_name, _, func = text.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), func, None) if module_name else None
    except ImportError:
        found = None
    if not callable(found):
        raise ConfigError(
            f"config '{name}': parser {parser!r} cannot be found; give a function or "
            "'package.module.function' importable here"
        )
    return found  # type: ignore[no-any-return]


def _static(cls: type, attr: str) -> Any:
    """A class attribute as stored, without running descriptors (inspect.getattr_static,
    without importing inspect for every `import ledgerflow`)."""
    for klass in cls.__mro__:
        if attr in klass.__dict__:
            return klass.__dict__[attr]
    return None


# -- the flow's configs ----------------------------------------------------------------------


def flow_configs(flow_cls: type) -> list[tuple[str, Config]]:
    """(attribute, Config) pairs of a flow class, in a stable order."""
    found = []
    for attr in dir(flow_cls):
        if attr.startswith("__"):
            continue
        value = _static(flow_cls, attr)
        if isinstance(value, Config):
            found.append((attr, value))
    names = [c.name for _, c in found]
    shared = sorted({n for n in names if names.count(n) > 1})
    if shared:
        raise ConfigError(f"two Configs of {flow_cls.__name__} are named '{shared[0]}'; "
                          "give each its own name")  # fmt: skip
    return found


def settle_values(flow_cls: type, files: Iterable[tuple[str, str]],
                  values: Iterable[tuple[str, str]]) -> dict[str, Any]:  # fmt: skip
    """{config name: value} from `--config NAME FILE` / `--config-value NAME JSON` pairs,
    else each config's default. Raises ConfigError (one line) for what cannot be used."""
    configs = {c.name: c for _, c in flow_configs(flow_cls)}
    given_files, given_values = dict(files), dict(values)
    for name in [*given_files, *given_values]:
        if name not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ConfigError(f"{flow_cls.__name__} has no config named '{name}' (its "
                              f"configs: {known})")  # fmt: skip
    both = sorted(set(given_files) & set(given_values))
    if both:
        raise ConfigError(f"config '{both[0]}' is given both --config and --config-value; "
                          "give one of them")  # fmt: skip
    settled: dict[str, Any] = {}
    flow = flow_cls.__name__
    for name, config in configs.items():
        if name in given_values:
            settled[name] = config.value_from(given_values[name], "--config-value", flow)
        elif name in given_files:
            path = given_files[name]
            settled[name] = config.value_from(_read(path, name, "file"), f"file {path}", flow)
        else:
            text, source = config.default_text(flow)
            settled[name] = config.value_from(text, source, flow)
        if settled[name] is None and config.required:
            raise ConfigError(f"config '{name}' is required: give it with --config {name} FILE "
                              f"or --config-value {name} JSON")  # fmt: skip
    return settled


def apply_configs(flow_cls: type, values: dict[str, Any]) -> None:
    """Give the flow class its configs' values: evaluate every config read in decorator
    attributes and Parameter defaults, check the decorators with their real values, and
    export the values for tasks started in fresh interpreters. Can be called again (resume
    replaces the values with the origin run's)."""
    flow_cls._lf_config_values = dict(values)  # type: ignore[attr-defined]
    for attr in dir(flow_cls):
        func = _static(flow_cls, attr)
        for deco in getattr(func, "decorators", None) or []:
            raw = deco.__dict__.get("_lf_raw")
            if raw is not None:
                _settle_decorator(deco, raw, values, attr)
        if isinstance(func, Parameter) and not isinstance(func, Config):
            _settle_parameter_default(func, values)
    raw_flow = flow_cls.__dict__.get("_lf_raw_flow_decorators")
    current = getattr(flow_cls, "_flow_decorators", {}) or {}
    if raw_flow is None and has_delayed(current):
        raw_flow = flow_cls._lf_raw_flow_decorators = dict(current)  # type: ignore[attr-defined]
    if raw_flow is not None:
        flow_cls._flow_decorators = {  # type: ignore[attr-defined]
            name: _plain(_unpacked(_resolved(attrs, values), values))
            for name, attrs in raw_flow.items()
        }
    if not values:
        return
    exported = _exported()
    exported[flow_cls.__name__] = values
    try:
        os.environ[ENV_CONFIGS] = json.dumps(exported)
    except (TypeError, ValueError):
        pass  # plain=True values that are not JSON: fork and thread tasks still see them


def apply_from_environment(flow_cls: type) -> None:
    """In a task started as a fresh interpreter: the values the run settled, if the flow
    has configs and the run exported them."""
    if ENV_CONFIGS not in os.environ or "_lf_config_values" in flow_cls.__dict__:
        return
    values = _exported().get(flow_cls.__name__)
    if values is not None and flow_configs(flow_cls):
        apply_configs(flow_cls, values)


def _exported() -> dict[str, Any]:
    return exported_per_flow(ENV_CONFIGS)


def _settle_decorator(deco: Any, raw: dict[str, Any], values: dict[str, Any], step: str) -> None:
    try:
        attributes = _unpacked(_resolved(raw, values), values)
    except LedgerflowError as e:
        raise ConfigError(f"step '{step}': @{deco.name}: {e}") from None
    try:
        checked = type(deco)(**attributes)  # the checks the decorator makes on plain values
    except LedgerflowError as e:
        raise ConfigError(f"step '{step}': @{deco.name} with its config values: {e}") from None
    deco.attributes = checked.attributes


def _settle_parameter_default(param: Parameter, values: dict[str, Any]) -> None:
    raw = param.__dict__.get("_lf_raw_default")
    if raw is None:
        if not has_delayed(param.default):
            return
        raw = param.__dict__["_lf_raw_default"] = param.default
    param.default = _resolved(raw, values)
    if getattr(param, "_declared_type", None) is None:
        param.type = Parameter._resolve_type(None, param.default)


def _resolved(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, DelayEvaluator):
        found = value(values)
        return found.to_dict() if isinstance(found, ConfigValue) else found
    if isinstance(value, dict):
        return {_resolved(k, values): _resolved(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(_resolved(v, values) for v in value)
    return value


def _unpacked(attributes: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`@resources(**cfg.res)`: the keys of the unpacked config become attributes."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(key, str) and key.startswith(UNPACK_KEY):
            if not isinstance(value, dict):
                raise ConfigError(f"**{value!r} in a decorator needs a dict, got "
                                  f"{type(value).__name__}")  # fmt: skip
            out.update(value)
        else:
            out[key] = value
    return out
