"""Plain record classes for the run path, without the cost of `dataclasses`.

`@struct` gives a class with annotated fields an `__init__` (positional or keyword, defaults,
`field(factory=list)` for a fresh default per instance), `__repr__` and `__eq__`; `frozen=True`
makes instances read-only and hashable; `replace()` copies one with some fields changed —
the part of dataclasses ledgerflow uses (no field inheritance, no ClassVar). dataclasses
imports `inspect` and compiles code for every class: ~20 ms of every run's start-up for a
dozen classes (docs/performance.md). ledgerflow's records are all structs, on the run path
or not: one record style.

`field()` is written as attrs writes it (keyword-only `default=` and `factory=`) and
`struct` is marked with PEP 681's `dataclass_transform`, so type checkers read a struct as
they read a dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")
_MISSING = object()


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Any):
        self.make = make


def field(*, default: Any = _MISSING, factory: Callable[[], Any] | None = None) -> Any:
    """A field's default: `default=` a value, or `factory=` a callable making a fresh one for
    each instance, e.g. `items: list[int] = field(factory=list)`."""
    if (default is _MISSING) == (factory is None):
        raise TypeError("field() takes exactly one of default= and factory=")
    return default if factory is None else _Factory(factory)


@dataclass_transform(field_specifiers=(field,))
def struct(cls: type[T] | None = None, *, frozen: bool = False,
           hidden: tuple[str, ...] = ()) -> Any:  # fmt: skip
    """Class decorator; `hidden` fields are left out of the repr (e.g. large bytes)."""

    def wrap(cls: type[T]) -> type[T]:
        names = tuple(cls.__dict__.get("__annotations__", {}))
        defaults: dict[str, Any] = {}
        for name in names:
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
                if isinstance(defaults[name], _Factory):
                    delattr(cls, name)
            elif defaults:
                raise TypeError(f"{cls.__name__}: field '{name}' without a default follows "
                                "fields with defaults")  # fmt: skip
        _add_methods(cls, names, defaults, frozen, hidden)
        cls.__struct_defaults__ = defaults  # type: ignore[attr-defined]  # (builder reads them)
        return cls

    return wrap if cls is None else wrap(cls)


def _add_methods(cls: Any, names: tuple[str, ...], defaults: dict[str, Any], frozen: bool,
                 hidden: tuple[str, ...]) -> None:  # fmt: skip
    known = frozenset(names)
    shown = [n for n in names if n not in hidden]
    count = len(names)
    # Defaults by kind, so the common call (every field given, or plain defaults left out)
    # is a few dict operations: records are made per task and per artifact on the run path.
    plain = {n: v for n, v in defaults.items() if not isinstance(v, _Factory)}
    factories = {n: v.make for n, v in defaults.items() if isinstance(v, _Factory)}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) == count and not kwargs:
            self.__dict__.update(zip(names, args))
            return
        if len(args) > count:
            raise TypeError(f"{cls.__name__}() takes {count} arguments, got {len(args)}")
        values = dict(plain)
        values.update(zip(names, args))
        if kwargs:
            if not known.issuperset(kwargs):
                key = next(k for k in kwargs if k not in known)
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument '{key}'")
            for key in names[: len(args)]:
                if key in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument "
                                    f"'{key}'")  # fmt: skip
            values.update(kwargs)
        if len(values) != count:
            for name in names:
                if name not in values:
                    make = factories.get(name)
                    if make is None:
                        raise TypeError(f"{cls.__name__}() missing required argument '{name}'")
                    values[name] = make()
        # In field order, as before (a pickle holds the fields in that order).
        self.__dict__.update({n: values[n] for n in names})

    def __repr__(self: Any) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{cls.__qualname__}({fields})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        # As dataclasses: field by field, identical objects equal (e.g. the same NaN). When
        # the instance dicts hold just the fields, comparing them is that, in C.
        mine, theirs = self.__dict__, other.__dict__
        if len(mine) == count == len(theirs):
            return mine == theirs
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    cls.__init__ = __init__
    cls.__repr__ = __repr__
    cls.__eq__ = __eq__
    cls.__struct_fields__ = names
    if frozen:

        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise AttributeError(f"cannot assign to field '{name}' of a frozen {cls.__name__}")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in names))

        def __delattr__(self: Any, name: str) -> None:
            raise AttributeError(f"cannot delete field '{name}' of a frozen {cls.__name__}")

        cls.__setattr__ = __setattr__
        cls.__delattr__ = __delattr__
        cls.__hash__ = __hash__
    else:
        cls.__hash__ = None  # mutable and compared by value, as dataclasses do


def builder(cls: type[T], given: str | None = None) -> Callable[..., T]:
    """A function making `cls`'s instances with one plain attribute store per field, in field
    order, and no call of `__init__`: the fields named in `given` (all, by default) are its
    parameters, in that order (the trailing ones that have plain defaults keep them); every
    other field takes its default, a factory's a fresh value each call.

    For a task's process, which pays for every page it writes: `__init__` reads the field
    names through a tuple whose strings share pages with the fork server, so each record
    made that way copies pages a plain store leaves alone (taskspec.py). The function is
    compiled from source, as a hand-written one would be."""
    names = cls.__struct_fields__  # type: ignore[attr-defined]
    defaults: dict[str, Any] = cls.__struct_defaults__  # type: ignore[attr-defined]
    params = list(names) if given is None else given.split()
    unknown = [p for p in params if p not in names]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field '{unknown[0]}'")
    space: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    optional = len(params)  # params[optional:] keep their plain defaults
    while optional and _plain_default(defaults, params[optional - 1]):
        optional -= 1
    signature = []
    for i, name in enumerate(params):
        signature.append(name if i < optional else f"{name}={_value(name, defaults[name], space)}")
    body = []
    for name in names:
        if name in params:
            value = name
        elif isinstance(defaults.get(name), _Factory):
            make = defaults[name].make
            value = {list: "[]", dict: "{}"}.get(make) or _value(name, make, space) + "()"
        elif name in defaults:
            value = _value(name, defaults[name], space)
        else:
            raise TypeError(f"{cls.__name__}: field '{name}' has no default; give it")
        body.append(f"    obj.{name} = {value}\n")
    function = f"new_{cls.__name__}"
    source = (f"def {function}({', '.join(signature)}):\n    obj = _new(_cls)\n"
              f"{''.join(body)}    return obj\n")  # fmt: skip
    exec(compile(source, f"<builder of {cls.__qualname__}>", "exec"), space)  # noqa: S102
    made: Callable[..., T] = space[function]
    made.__qualname__ = function
    made.__module__ = cls.__module__
    return made


def _plain_default(defaults: dict[str, Any], name: str) -> bool:
    return name in defaults and not isinstance(defaults[name], _Factory)


def _value(name: str, value: Any, space: dict[str, Any]) -> str:
    """A default as the generated source writes it: a literal, or a name bound in `space`."""
    if value is None or type(value) in (bool, int, float, str):
        return repr(value)
    space[f"_default_{name}"] = value
    return f"_default_{name}"


def replace(obj: T, **changes: Any) -> T:
    """A copy of a struct with some fields changed."""
    names = type(obj).__struct_fields__  # type: ignore[attr-defined]
    unknown = [k for k in changes if k not in names]
    if unknown:
        raise TypeError(f"{type(obj).__name__}() got an unexpected keyword argument "
                        f"'{unknown[0]}'")  # fmt: skip
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)  # no __setattr__: a frozen struct can be replaced too
    return new
