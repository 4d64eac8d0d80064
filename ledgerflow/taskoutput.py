"""What a step set, turned into the task's artifacts (`collect_artifacts`), and how a
failure is told: the user's traceback and line, without ledgerflow's own frames.

Owner: taskpath (task.py calls it once a step has returned or failed).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import codec
from .exceptions import ArtifactError
from .flowspec import FlowSpec, TaskState
from .internals import INTERNAL_ARTIFACTS
from .records import ArtifactRecord
from .secrets_check import credential_warning
from .structs import replace
from .taskblobs import BlobAccess
from .taskspec import TaskResult, TaskSpec

if TYPE_CHECKING:
    import traceback

    from .capture import OutputSink

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def collect_artifacts(flow: FlowSpec, state: TaskState, spec: TaskSpec,
                      parent_refs: dict[str, ArtifactRecord], result: TaskResult,
                      error: BaseException | None, output: OutputSink, blobs: BlobAccess,
                      carry: bool = False) -> None:  # fmt: skip
    """Encode what the step set, add the internal artifacts, and fill `result`.

    With `carry` (a task in a process of its own, not a join), the artifacts it passes on
    as the spec gave them are listed by name in `result.carried` instead of copied into
    `result.artifacts`: what compact_result would make of the whole map, without making it
    (expand_result puts the records back in the runtime)."""
    final: dict[str, ArtifactRecord] = {}
    # What came unchanged from a parent (or a join's input) is marked inherited.
    passed_on: set[tuple[str, str]] = set()
    constants = spec.constants if spec.step != "start" else {}
    if not carry:
        passed_on = {(name, ref.sha) for refs in spec.inputs for name, ref in refs.items()}
        passed_on |= {(name, ref.sha) for name, ref in constants.items()}
        for name, ref in state.refs.items():
            final[name] = replace(ref, inherited=(name, ref.sha) in passed_on)
    user_values = {}
    for k, v in flow.__dict__.items():
        if not k.startswith("_") and k not in spec.param_names:  # parameters are read-only
            user_values[k] = v
    rehashed = _rehash_read_values(user_values, state) if _any_large(state.refs) else {}
    dropped = False
    for name, value in user_values.items():
        why = None if name.isascii() and "\0" not in name else unstorable_name(name)
        if why is not None:
            if error is not None:
                continue  # the step failed anyway: keep what can be kept
            error = ArtifactError(
                f"Step '{spec.step}' cannot store an artifact named {name!r}: the name {why}; "
                "name artifacts with plain text, as `self.name = ...` does"
            )
            final, result.blobs, dropped = {}, [], True
            break
        try:
            record = (rehashed and _unchanged(name, state, rehashed)) or blobs.store(
                name, value, result)  # fmt: skip
        except Exception as e:  # noqa: BLE001 - the error is recorded for the artifact's name
            if error is not None:
                continue  # the step failed anyway: keep what can be kept
            error = ArtifactError(
                f"Step '{spec.step}' cannot store artifact '{name}': a "
                f"{codec.type_name(value)} cannot be serialized ({type(e).__name__}: {e}); "
                f"store a serializable value, or keep it private as self._{name}"
            )
            final, result.blobs, dropped = {}, [], True
            break
        if carry:  # (name, sha) in passed_on, for the one parent a task that carries has
            given = parent_refs.get(name)  # (written out: a function less in each task)
            if given is None or given.sha != record.sha:
                given = constants.get(name)
            record.inherited = given is not None and given.sha == record.sha
        else:
            record.inherited = (name, record.sha) in passed_on
        final[name] = record
        if not record.inherited:
            warning = credential_warning(spec.step, name, value, record.preview)
            if warning:
                warn(result, warning)
    # What the task passes on as it was given (nothing when an unstorable value dropped all)
    carried = _not_in(state.refs, final) if carry and not dropped else []
    if error is not None:
        _failed(result, error)
        if isinstance(error, ArtifactError) and not final and not carried:
            result.artifacts = {}
            return
    t = result.transition
    if t is not None and t.foreach is not None:  # the one internal artifact stored as such
        for name, value in _internal_values(result).items():
            final[name] = blobs.store(name, value, result)
    result.artifacts = final
    if carried:
        result.carried = carried


def _not_in(names: dict[str, Any], final: dict[str, ArtifactRecord]) -> list[str]:
    kept = []
    for name in names:  # (a loop: a comprehension is a function object made per call)
        if name not in final:
            kept.append(name)
    return kept


def _failed(result: TaskResult, error: BaseException) -> None:
    result.status = "failed"
    result.transition = None
    result.exception_type = codec.type_name(error)
    result.exception = str(error)
    result.traceback = format_user_traceback(error)
    result.location = user_location(error)


def carried_records(spec: TaskSpec) -> dict[str, ArtifactRecord]:
    """The records a task starts with and passes on unchanged unless its step sets them
    (its parent's artifacts and the run's constants, marked inherited as
    collect_artifacts marks them), in its order. The runtime knows them from the spec,
    so a task's process sends back only the names of those it kept (compact_result)."""
    parent = {} if spec.is_join or not spec.inputs else spec.inputs[0]
    start = spec.step == "start"
    records = {name: _inherited(ref, True) for name, ref in parent.items()
               if name not in INTERNAL_ARTIFACTS}  # fmt: skip
    for name, ref in spec.constants.items():
        if name not in records:
            records[name] = _inherited(ref, not start)
    return records


def _inherited(ref: ArtifactRecord, inherited: bool) -> ArtifactRecord:
    if ref.inherited is inherited:
        return ref
    return replace(ref, inherited=inherited)


def compact_result(result: TaskResult, spec: TaskSpec) -> None:
    """In a task's process, before its result is sent: the records the runtime has already
    (carried_records) go as names only; expand_result puts them back."""
    carried = carried_records(spec)
    kept = [name for name, record in result.artifacts.items() if carried.get(name) == record]
    if kept:
        result.carried = kept
        for name in kept:
            del result.artifacts[name]


def expand_result(result: TaskResult, spec: TaskSpec) -> None:
    """In the runtime: the artifacts of a compacted result, whole and in their order."""
    if not result.carried:
        return
    carried = carried_records(spec)
    kept = set(result.carried)
    artifacts = {}
    for name, record in carried.items():
        if name in kept:
            artifacts[name] = record
        elif name in result.artifacts:
            artifacts[name] = result.artifacts[name]
    for name, record in result.artifacts.items():
        artifacts.setdefault(name, record)
    result.artifacts, result.carried = artifacts, []


def unstorable_name(name: str) -> str | None:
    """Why an artifact name cannot be stored as the text the ledger keeps (None if it can):
    a lone surrogate (`setattr(self, "s\\udcff", 1)`) is not UTF-8, and SQLite would cut a
    name at a NUL character."""
    if "\0" in name:
        return "holds a NUL character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate)"
    return None


def _internal_values(result: TaskResult) -> dict[str, Any]:
    """Internal artifacts stored as such: only `_foreach_values` (see internals.py for the
    ones built from task columns)."""
    t = result.transition
    if t is not None and t.foreach is not None:
        return {"_foreach_values": t.foreach_values}
    return {}


def _rehash_read_values(values: dict[str, Any], state: TaskState) -> dict[str, str | None]:
    """The SHA-256 of each large value read from a parent (and so on self), all hashed at
    once in parallel threads (codec.digests): whether it changed in place."""
    return codec.digests({name: value for name, value in values.items()
                          if (ref := state.refs.get(name)) is not None
                          and ref.size >= _RECHECK_OVER})  # fmt: skip


def _any_large(refs: dict[str, ArtifactRecord]) -> bool:
    for ref in refs.values():
        if ref.size >= _RECHECK_OVER:
            return True
    return False


def _unchanged(
    name: str, state: TaskState, rehashed: dict[str, str | None]
) -> ArtifactRecord | None:
    """For a large artifact read from a parent, its parent's record when it still hashes
    the same: unchanged, it is not compressed again."""
    ref = state.refs.get(name)
    if ref is None or name not in rehashed or rehashed[name] != ref.sha:
        return None
    return replace(ref)


# Below this size, encoding again costs less than hashing first.
_RECHECK_OVER = 1024 * 1024


def warn(result: TaskResult, text: str) -> None:
    """A warning about the task: stored with its stderr, shown by the runtime."""
    result.stderr += text + "\n"
    result.warnings.append(text)


def _user_frames(error: BaseException) -> list[traceback.FrameSummary]:
    import traceback  # only failures need it

    return [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR + os.sep)
    ]


def user_location(error: BaseException) -> str | None:
    """'flow.py:12' of the user's line that led to the error, if any."""
    frames = _user_frames(error)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def format_user_traceback(error: BaseException) -> str:
    """The traceback of the user's code, without ledgerflow's own frames."""
    import traceback

    frames = _user_frames(error)
    lines = (
        ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    )
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines)
