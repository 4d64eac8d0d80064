"""`run --reuse`: a task whose code and inputs the ledger has already seen is not run again.

Every task of every run gets a key (the runtime stores it with the task row): the SHA-256 of

- the step's code fingerprint (`codekey.py` says what it covers),
- the environment that interprets it: Python's implementation and minor version, and
  ledgerflow's version,
- the name and SHA-256 of every artifact visible to the task, per input, in input order
  (parameters are artifacts, so they are in it; a join has one map per branch),
- its position: the foreach indexes that led to it (the foreach's values are an artifact of
  the splitting task, hence already in the inputs).

A changed parameter therefore changes the key of every task that can see it (all of them):
tracking which artifacts a step actually reads would let more tasks be reused, but a step can
read an artifact in ways no tracker sees (`getattr(self, name)`, a helper given `self`), and a
wrong reuse is a wrong result. With `--reuse`, a task whose key matches a successful task
(not one `@catch` caught) of a run the user trusts (their own, or imported from a trusted
source) is cloned from it, as `resume` clones: same artifact SHAs, its logs, and its origin
recorded. A step decorated `@reuse(False)` always runs and gets no key.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import reads
from .codec import new_sha256, sha256
from .codekey import fingerprint
from .decorators import step_decorator
from .records import ArtifactRecord
from .structs import struct

if TYPE_CHECKING:
    from .ledger import Ledger
    from .resume import OriginTask
    from .taskspec import TaskSpec

KEY_FORMAT = 1  # bumped when what goes into a key changes: old keys then match nothing


def environment() -> str:
    from .version import __version__

    impl = {"cpython": "CPython", "pypy": "PyPy"}.get(sys.implementation.name,
                                                     sys.implementation.name)  # fmt: skip
    major, minor = sys.version_info[:2]
    return f"{impl} {major}.{minor}, ledgerflow {__version__}"


def outputs_digest(artifacts: Mapping[str, ArtifactRecord] | Mapping[str, str]) -> bytes:
    """The SHA-256 (32 bytes) of a task's artifacts: every name and SHA, in name order."""
    parts = []  # (hashed in one call: the same digest as one update a name)
    for name in sorted(artifacts):
        record = artifacts[name]
        sha = record if isinstance(record, str) else record.sha
        parts.append(f"{name}\x00{sha}\x00")
    return _digest("".join(parts).encode("utf-8", "surrogatepass"))


def inputs_digest(outputs: list[bytes]) -> bytes:
    """What a task was given: its parents' outputs digests, in input order (a join's inputs
    in split order), as one SHA-256 (32 bytes)."""
    return _digest(b"".join(outputs))


def task_key(code: str, env: str, inputs: str, flow: str, step: str,
             position: list[int], is_join: bool) -> str:  # fmt: skip
    """A task's reuse key from its parts (each a string `explain` can show)."""
    text = json.dumps([KEY_FORMAT, flow, step, code, env, inputs, position, is_join])
    return sha256(text.encode())


def key_head(code: str, env: str, flow: str, step: str) -> str:
    """What every key of a step's tasks starts with: task_key's text up to `inputs`."""
    return json.dumps([KEY_FORMAT, flow, step, code, env, ""])[:-3]


def key_text(head: str, inputs: str, position: list[int], is_join: bool) -> str:
    """task_key's text from a step's `key_head` (the same text, built without JSON-encoding
    the parts every task of the step shares; `inputs` is hex, `position` integers)."""
    where = ", ".join(map(str, position))
    return f'{head}"{inputs}", [{where}], {"true" if is_join else "false"}]'


class StepCode:
    """The code fingerprint of each step of a flow, computed once per run and step."""

    def __init__(self, flow_cls: type, step_names: list[str]):
        self.flow_cls = flow_cls
        self.step_names = set(step_names)
        self._prints: dict[str, tuple[str, list[list[str]]] | None] = {}

    def get(self, step: str) -> tuple[str, list[list[str]]] | None:
        """(sha, parts) of a step's code; None for a step that opted out with @reuse(False)."""
        if step not in self._prints:
            func = getattr(self.flow_cls, step)
            decorator = step_decorator(func, "reuse")
            if decorator is not None and not decorator.attributes["enabled"]:
                self._prints[step] = None
            else:
                self._prints[step] = fingerprint(self.flow_cls, step, self.step_names)
        return self._prints[step]


@struct
class ReuseKey:
    """A task's key and the digests it was made from (stored in `task_key`)."""

    key: str
    code: str
    inputs: str
    env: str
    parts: list[list[str]] | None = None  # the code's parts, with a step's first task only


class TaskKeys:
    """The runtime's side of `--reuse`: every task's key, and the task to clone for it."""

    def __init__(self, flow_cls: type, step_names: list[str], ledger: Ledger):
        self.code = StepCode(flow_cls, step_names)
        self.flow_name = flow_cls.__name__
        self.ledger = ledger
        self.env = environment()
        self._described: set[str] = set()  # steps whose code parts were handed out already
        self._heads: dict[str, str] = {}  # step -> the start of its keys' text (key_text)

    def key(self, spec: TaskSpec, inputs: bytes) -> ReuseKey | None:
        """The task's key, given its inputs digest; None for a step that opted out."""
        code = self.code.get(spec.step)
        if code is None:
            return None
        digest = inputs.hex()
        head = self._heads.get(spec.step)
        if head is None:
            head = self._heads[spec.step] = key_head(code[0], self.env, self.flow_name, spec.step)
        text = key_text(head, digest, [f.index for f in spec.foreach_stack], spec.is_join)
        key = sha256(text.encode())
        parts = None
        if spec.step not in self._described:
            self._described.add(spec.step)
            parts = code[1]
        return ReuseKey(key, code[0], digest, self.env, parts)

    def find(self, key: ReuseKey) -> OriginTask | None:
        """The newest successful task with this key in a run the user trusts, as a clone."""
        from .resume import origin_task
        from .trust_store import run_trusted

        for row in reads.reusable_tasks(self.ledger, key.key):
            if run_trusted(self.ledger, row["run_pk"]):
                task = reads.task_for_clone(self.ledger, row["pk"])
                if task is not None:
                    return origin_task(self.ledger, f"{row['flow']}/{row['run_id']}", task)
        return None


def _digest(data: bytes) -> bytes:
    """SHA-256 of a key's text, raw (CPython's own hasher for short texts: no OpenSSL)."""
    hasher = new_sha256(len(data))
    hasher.update(data)
    return hasher.digest()  # type: ignore[no-any-return]
