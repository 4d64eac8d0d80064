"""What a step's code fingerprint covers (ledgerflow/codekey.py): each edit a user makes to a
flow file changes the fingerprint of exactly the steps whose result it can change."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
from pathlib import Path

import pytest

from ledgerflow.codekey import fingerprint

_counter = itertools.count()

FLOW = """
import json
import lf_helpers as helpers
from ledgerflow import FlowSpec, step, retry

SCALE = 3
TIMES = 1
NAMES = ("a", "b")

def square(x):
    return x * x

def uses_square(x):
    return square(x) + 1

class Model:
    def fit(self, x):
        return x + 1

class KeyFlow(FlowSpec):
    factor = 2

    @step
    def start(self):
        self.x = uses_square(SCALE)  # a comment
        self.next(self.middle)

    @step
    def middle(self):
        self.y = Model().fit(self.x) + self._bonus()
        self.next(self.last)

    def _bonus(self):
        return self.factor

    @retry(times=TIMES)
    @step
    def last(self):
        self.z = helpers.double(self.y) + len(NAMES)
        self.s = json.dumps(self.z)
        self.next(self.end)

    @step
    def end(self):
        pass
"""

HELPERS = """
def double(v):
    return 2 * v
"""


def load(tmp_path: Path, flow: str = FLOW, helpers: str = HELPERS) -> type:
    """The flow as module `lf_keyflow` (a fresh copy each time, as a new run loads it)."""
    d = tmp_path / f"v{next(_counter)}"
    d.mkdir()
    (d / "lf_helpers.py").write_text(helpers)
    (d / "lf_keyflow.py").write_text(textwrap.dedent(flow))
    for name in ("lf_helpers", "lf_keyflow"):
        sys.modules.pop(name, None)
    sys.path.insert(0, str(d))
    try:
        spec = importlib.util.spec_from_file_location("lf_keyflow", d / "lf_keyflow.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(d))
    return module.KeyFlow


STEPS = ["start", "middle", "last", "end"]


def prints(cls: type) -> dict[str, str]:
    return {s: fingerprint(cls, s, set(STEPS))[0] for s in STEPS}


def changed(tmp_path: Path, old: str, new: str, *, helpers: str = HELPERS) -> set[str]:
    base = prints(load(tmp_path))
    assert old in FLOW or old == ""
    edited = prints(load(tmp_path, FLOW.replace(old, new) if old else FLOW, helpers))
    return {s for s in STEPS if base[s] != edited[s]}


def test_the_same_code_gives_the_same_fingerprint_in_another_module(tmp_path):
    assert changed(tmp_path, "", "") == set()


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("# a comment", "# another comment", set()),  # comments and layout do not count
        ("self.x = uses_square(SCALE)", "self.x = uses_square(SCALE) + 0", {"start"}),
        ("return x * x", "return x * x * 1", {"start"}),  # a helper of a helper
        ("SCALE = 3", "SCALE = 4", {"start"}),  # a module-level constant
        ("return x + 1", "return x + 2", {"middle"}),  # a method of a class the step uses
        ("return self.factor", "return self.factor + 1", {"middle"}),  # a flow method
        ("factor = 2", "factor = 5", {"middle"}),  # a class attribute, through a flow method
        ("@retry(times=TIMES)", "@retry(times=2)", {"last"}),  # the step's decorators
        ("TIMES = 1", "TIMES = 2", {"last"}),  # a name in a decorator's arguments
        ('NAMES = ("a", "b")', 'NAMES = ("a", "b", "c")', {"last"}),
        (
            "self.next(self.end)\n\n    @step\n    def end(self):\n        pass",
            "self.next(self.end)\n\n    @step\n    def end(self):\n        print('bye')",
            {"end"},
        ),
    ],
)
def test_an_edit_changes_the_fingerprint_of_the_steps_it_can_affect(tmp_path, old, new, expected):
    assert changed(tmp_path, old, new) == expected


def test_editing_a_helper_module_changes_the_steps_that_use_it(tmp_path):
    assert changed(tmp_path, "", "", helpers=HELPERS.replace("2 * v", "3 * v")) == {"last"}


def test_the_parts_name_what_was_followed(tmp_path):
    cls = load(tmp_path)
    _, parts = fingerprint(cls, "start", set(STEPS))
    kinds = {(kind, name.rsplit(".", 1)[-1]) for kind, name, _ in parts}
    assert ("step", "start") in kinds
    assert ("function", "uses_square") in kinds and ("function", "square") in kinds
    assert ("constant", "SCALE") in kinds
    _, parts = fingerprint(cls, "last", set(STEPS))
    names = {name for _, name, _ in parts}
    assert "lf_helpers" in names  # the user module, by its source
    assert "json" not in names  # the standard library: Python's version is in every key
