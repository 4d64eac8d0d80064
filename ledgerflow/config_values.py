"""What a config reads as: `ConfigValue` (an immutable dict with attribute access) and
`DelayEvaluator`, the placeholder `cfg.x` and `config_expr("...")` stand for in a flow's
class body until configs.apply_configs evaluates it. Metaflow's classes, with its names.
"""

from __future__ import annotations

import collections.abc
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from .exceptions import ParameterError

ID_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
UNPACK_KEY = "_unpacked_delayed_"

# A config that cannot be read, parsed or used: a ParameterError (a Config is a Parameter).
ConfigError = ParameterError


class ConfigValue(collections.abc.Mapping, dict):  # type: ignore[type-arg,misc,metaclass]
    """An immutable nested dict read as `cfg["a"]["b"]` or `cfg.a.b` (Metaflow's class).
    A dict subclass, so `json.dumps` and `isinstance(v, dict)` work."""

    def __init__(self, data: collections.abc.Mapping[Any, Any]):
        object.__setattr__(self, "_data", {k: self._construct(v) for k, v in data.items()})
        dict.__init__(self, self._data)  # type: ignore[call-overload]

    @classmethod
    def _construct(cls, obj: Any) -> Any:
        if isinstance(obj, ConfigValue):
            return obj
        if isinstance(obj, collections.abc.Mapping):
            return ConfigValue(obj)
        if isinstance(obj, (list, tuple, set)):
            return type(obj)(cls._construct(x) for x in obj)
        return obj

    @classmethod
    def _to_dict(cls, obj: Any) -> Any:
        if isinstance(obj, collections.abc.Mapping):
            return {k: cls._to_dict(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set)):
            return type(obj)(cls._to_dict(x) for x in obj)
        return obj

    def to_dict(self) -> dict[Any, Any]:
        """A plain (nested) dict of the value."""
        return dict(self._to_dict(self._data))

    def __getattr__(self, key: str) -> Any:
        if key == "_data":
            raise AttributeError(key)  # while unpickling
        if key in self._data:
            return self._data[key]
        raise AttributeError(f"config has no key {key!r} (keys: {', '.join(map(str, self))})")

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def keys(self) -> Any:
        return self._data.keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConfigValue):
            return self._data == other._data
        return isinstance(other, dict) and self._data == other

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._data)

    __str__ = __repr__

    def __dir__(self) -> Iterable[str]:
        return [*dir(type(self)), *(k for k in self._data if ID_PATTERN.match(str(k)))]

    def __reduce__(self) -> Any:
        return (self.__class__, (self.to_dict(),))

    def copy(self) -> ConfigValue:
        return ConfigValue(self.to_dict())

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ConfigValue is immutable")

    __setattr__ = __setitem__ = __delattr__ = __delitem__ = _immutable  # type: ignore[assignment]
    clear = update = setdefault = pop = popitem = _immutable  # type: ignore[assignment]


class DelayEvaluator(collections.abc.Mapping):  # type: ignore[type-arg]
    """A config read that waits for the config's value: `cfg.a.b`, `cfg["a"]`,
    `config_expr("cfg.a.lower()")`, and `**cfg.section` in a decorator's arguments."""

    _lf_delayed = True  # the mark decorators.py looks for (on the class: no __getattr__)

    def __init__(self, expr: str, saved_globals: dict[str, Any] | None = None):
        self._config_expr = expr
        self._globals = saved_globals
        self._access: list[Any] | None = [] if ID_PATTERN.match(expr) else None

    def _extended(self, key: Any) -> DelayEvaluator:
        if self._access is None:
            raise AttributeError(f"config_expr({self._config_expr!r}) cannot be read further")
        copied = DelayEvaluator(self._config_expr, self._globals)
        copied._access = [*self._access, key]
        return copied

    def __copy__(self) -> DelayEvaluator:
        copied = DelayEvaluator(self._config_expr, self._globals)
        copied._access = None if self._access is None else list(self._access)
        return copied

    def __deepcopy__(self, memo: dict[int, Any]) -> DelayEvaluator:
        return self.__copy__()

    def __iter__(self) -> Iterator[str]:
        yield f"{UNPACK_KEY}{id(self)}"

    def __len__(self) -> int:
        return 1

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and key == f"{UNPACK_KEY}{id(self)}":
            return self
        if self._access is None:
            raise KeyError(key)
        return self._extended(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_access", "_config_expr", "_globals"):
            raise AttributeError(name)
        return self._extended(name)

    def expression(self) -> str:
        """The Python expression this stands for, e.g. `cfg.resources.cpu`."""
        if not self._access:
            return self._config_expr
        parts = [self._config_expr]
        for key in self._access:
            if isinstance(key, str) and ID_PATTERN.match(key):
                parts.append(f".{key}")
            else:
                parts.append(f"[{key!r}]")
        return "".join(parts)

    def __call__(self, values: dict[str, Any] | None = None) -> Any:
        """The value, given the configs' values by name."""
        names = {k: _as_seen(v) for k, v in (values or {}).items()}
        expr = self.expression()
        try:
            return eval(expr, self._globals or {}, names)  # noqa: S307 - the flow author's own code
        except Exception as e:  # noqa: BLE001 - whatever the user's expression raises
            raise ConfigError(
                f"config expression '{expr}' could not be evaluated ({type(e).__name__}: {e}); "
                f"check the name and keys it reads (configs: {', '.join(sorted(names)) or 'none'})"
            ) from None

    def __repr__(self) -> str:
        return f"config_expr({self.expression()!r})"


def _as_seen(value: Any) -> Any:
    return ConfigValue(value) if isinstance(value, dict) and not isinstance(value, ConfigValue) \
        else value  # fmt: skip


def config_expr(expr: str) -> DelayEvaluator:
    """A config expression for a decorator's argument, evaluated when the flow starts:
    `@project(name=config_expr("cfg.project"))`, `config_expr("cfg.env.lower()")`. Names
    from the module that calls it (functions, imports) can be used in it."""
    # (sys._getframe, not inspect: `import ledgerflow` stays without inspect's import cost)
    caller = sys._getframe(1)
    return DelayEvaluator(expr, saved_globals=caller.f_globals)


def has_delayed(value: Any) -> bool:
    """Does this value (or anything inside it) read a config that is not known yet?"""
    if isinstance(value, DelayEvaluator):
        return True
    if isinstance(value, dict):
        return any(has_delayed(k) or has_delayed(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(has_delayed(v) for v in value)
    return False
