"""ledgerflow.structs: the light record classes of the run path behave as the dataclasses
they replace (fields, defaults, fresh factories, equality, frozen, replace, pickling)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from ledgerflow.structs import builder, field, replace, struct


@struct(hidden=("blob",))
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(factory=list)
    blob: bytes = b""


@dataclasses.dataclass
class PointDC:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    blob: bytes = dataclasses.field(default=b"", repr=False)


@struct(frozen=True)
class Frame:
    index: int
    count: int


@pytest.mark.parametrize("args, kwargs", [
    ((1,), {}), ((1, 2), {}), ((1,), {"y": 5}), ((), {"x": 3, "tags": ["a"]}),
    ((1, 2, ["t"], b"zz"), {}),
])  # fmt: skip
def test_construction_equality_and_repr_match_dataclasses(args: tuple, kwargs: dict[str, Any]):
    ours, theirs = Point(*args, **kwargs), PointDC(*args, **kwargs)
    assert vars(ours) == vars(theirs)
    assert repr(ours).replace("Point", "PointDC", 1) == repr(theirs)
    assert ours == Point(*args, **kwargs) and ours != Point(99)


@pytest.mark.parametrize("call", [
    lambda: Point(), lambda: Point(1, 2, [], b"", 5), lambda: Point(1, x=2), lambda: Point(1, z=3),
])  # fmt: skip
def test_wrong_arguments_raise_type_error_like_dataclasses(call):
    with pytest.raises(TypeError):
        call()


def test_equality_compares_fields_as_tuples_like_dataclasses():
    nan = float("nan")  # the same object: equal inside tuples, unequal to itself alone
    assert Point(nan) == Point(nan) and PointDC(nan) == PointDC(nan)
    assert Point(1) != PointDC(1) and Point(1) != (1, 0, [], b"")


def test_each_instance_gets_its_own_factory_default():
    a, b = Point(1), Point(2)
    a.tags.append("only a")
    assert b.tags == [] and "tags" not in Point.__dict__


def test_frozen_structs_are_read_only_and_hashable():
    f = Frame(1, 3)
    with pytest.raises(AttributeError):
        f.index = 2
    with pytest.raises(AttributeError):
        del f.count
    assert {f, Frame(1, 3)} == {Frame(1, 3)} and hash(f) == hash(Frame(1, 3))
    assert Point.__hash__ is None  # mutable ones are unhashable, as with dataclasses


def test_replace_copies_with_changes_and_pickling_round_trips():
    p = Point(1, 2, ["t"])
    q = replace(p, y=7)
    assert (q.x, q.y, q.tags) == (1, 7, ["t"]) and p.y == 2
    assert pickle.loads(pickle.dumps(p)) == p
    assert pickle.loads(pickle.dumps(Frame(4, 5))) == Frame(4, 5)


def test_a_field_without_default_after_defaults_is_refused():
    with pytest.raises(TypeError, match="without a default"):

        @struct
        class Bad:
            a: int = 1
            b: int


def test_field_takes_a_default_or_a_factory_as_attrs_does():
    @struct
    class Box:
        size: int = field(default=3)
        items: list[int] = field(factory=list)

    a, b = Box(), Box()
    assert a.size == 3 and a.items == [] and a.items is not b.items
    with pytest.raises(TypeError, match="exactly one"):
        field()
    with pytest.raises(TypeError, match="exactly one"):
        field(default=1, factory=list)


def test_one_record_style_no_module_uses_dataclasses():
    from pathlib import Path

    import ledgerflow

    root = Path(ledgerflow.__file__).parent
    users = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "import dataclasses" in p.read_text() or "from dataclasses" in p.read_text()
    ]
    assert users == []


def test_a_builder_makes_what_the_constructor_makes_one_store_per_field() -> None:
    make = builder(Point, "x blob")  # parameters in the order given; the rest defaulted
    made = make(3, b"raw")
    assert made == Point(3, blob=b"raw")
    assert list(vars(made)) == ["x", "y", "tags", "blob"]  # field order, as __init__ has it
    assert make(1, b"").tags is not make(1, b"").tags  # a factory's value is fresh each call
    whole = builder(Point)  # every field, the trailing plain defaults kept
    assert whole(1, 2, ["t"]) == Point(1, 2, ["t"])
    assert whole(1, 2, ["t"], b"b").blob == b"b"
    with pytest.raises(TypeError):
        whole(1)  # `tags` (a factory's field) is followed by a parameter: it is required
    with pytest.raises(TypeError, match="no field 'z'"):
        builder(Point, "x z")

    @struct
    class Odd:
        value: Any
        marker: frozenset[str] = frozenset({"a"})  # a default no literal writes

    assert builder(Odd, "value")(1) == Odd(1)
    assert builder(Odd, "value")(1).marker is Odd(1).marker
