"""`ledgerflow explain`: why a task was reused, or why it ran (taskreuse.py makes the keys).

A task's key is made of four parts, each stored with it: its step's code fingerprint (with
the list of functions, classes, constants and modules it covers, per run and step), the
environment, the digest of its inputs, and its position. To say why a task ran, it is
compared with the latest earlier successful task of the same step at the same position:
which code parts changed, which input artifacts changed, whether the environment did.
Everything here reads the ledger; nothing is loaded or unpickled.
"""

from __future__ import annotations

import json
from typing import Any

from . import reads
from .exceptions import MetaflowNotFound

_Shas = dict[str, str]


def explain_task(ledger: Any, flow: str, run_id: str, step: str, task_id: str) -> dict[str, Any]:
    """What a task's key was made of, where it was reused from, and what differs from the
    task it is compared with (None when there is none)."""
    run = reads.run_row(ledger, flow, run_id)
    task = reads.find_task(ledger, run["pk"], step, task_id)
    if task is None:
        raise MetaflowNotFound(f"task {flow}/{run_id}/{step}/{task_id} does not exist")
    pathspec = f"{flow}/{run_id}/{step}/{task_id}"
    key = reads.task_key(ledger, task["pk"])
    origin = task["origin_pathspec"]
    result: dict[str, Any] = {
        "task": pathspec,
        "status": task["status"],
        "key": key,
        "reused_from": origin if origin and not _resumed_from(run, origin) else None,
        "cloned_from": origin if origin and _resumed_from(run, origin) else None,
        "code_parts": _code_parts(ledger, run["pk"], step),
        "position": _position(task["foreach_stack"]),
        "compared_with": None,
    }
    if key is None:
        return result
    flow_row = reads.flow(ledger, flow)
    assert flow_row is not None  # the run exists
    earlier = _comparable(ledger, flow_row["id"], step, task, key)
    if earlier is None:
        return result
    other_key = reads.task_key(ledger, earlier["pk"])
    assert other_key is not None  # earlier_keyed_tasks only lists tasks with a key
    result["compared_with"] = {
        "task": f"{flow}/{earlier['run_id']}/{step}/{earlier['task_id']}",
        "same_key": other_key["key"] == key["key"],
        "code": _code_changes(_code_parts(ledger, earlier["run_pk"], step),
                              result["code_parts"]) if other_key["code"] != key["code"] else [],
        "inputs": _input_changes(ledger, earlier["pk"], task["pk"])
        if other_key["inputs"] != key["inputs"] else [],
        "env": [other_key["env"], key["env"]] if other_key["env"] != key["env"] else None,
    }  # fmt: skip
    return result


def explain_lines(doc: dict[str, Any]) -> list[str]:
    """What `ledgerflow explain` prints for an explain_task() result."""
    key = doc["key"]
    if doc["reused_from"]:
        head = f"reused from {doc['reused_from']}"
    elif doc["cloned_from"]:
        head = f"cloned by resume from {doc['cloned_from']}"
    else:
        head = f"ran ({doc['status']})"
    lines = [f"{doc['task']}: {head}"]
    if key is None:
        lines.append("  no reuse key: the step has @reuse(False), or the task ran before "
                     "this ledger recorded keys")  # fmt: skip
        return lines
    lines.append(f"  key      {key['key'][:16]}")
    parts = doc["code_parts"]
    lines.append(f"  code     {key['code'][:16]}  ({len(parts)} part{'s' * (len(parts) != 1)})")
    lines += [f"             {kind:<9} {name}  {sha[:12]}" for kind, name, sha in parts]
    lines.append(f"  env      {key['env']}")
    lines.append(f"  inputs   {key['inputs'][:16]}")
    if doc["position"]:
        lines.append(f"  position foreach index {', '.join(map(str, doc['position']))}")
    other = doc["compared_with"]
    if other is None:
        lines.append("  no earlier successful task of this step at this position has a key")
        return lines
    lines.append(f"  compared with {other['task']}:")
    if other["same_key"]:
        lines.append("    same key" + ("" if doc["reused_from"] else
                                       " (run with --reuse to reuse it)"))  # fmt: skip
        return lines
    lines += [f"    code: {change}" for change in other["code"]]
    lines += [f"    input: {change}" for change in other["inputs"]]
    if other["env"]:
        lines.append(f"    env: {other['env'][0]} -> {other['env'][1]}")
    return lines


def _resumed_from(run: dict[str, Any], origin: str) -> bool:
    """A clone from the run's own resume origin (else: reused by --reuse)."""
    parts = origin.split("/")
    return bool(run.get("origin_run_id")) and len(parts) == 4 and parts[1] == run["origin_run_id"]


def _position(foreach_stack: str | None) -> list[int]:
    return [int(frame[3]) for frame in json.loads(foreach_stack or "[]")]


def _comparable(ledger: Any, flow_pk: int, step: str, task: dict[str, Any],
                key: dict[str, Any]) -> Any:  # fmt: skip
    """The earlier task to compare with: at the same position, with the same key if any (a
    reused task's origin has it), else the same inputs (only code changed), else the same
    code (only inputs changed), else the latest."""
    position = _position(task["foreach_stack"])
    candidates = [row for row in reads.earlier_keyed_tasks(ledger, flow_pk, step, task["pk"])
                  if _position(row["foreach_stack"]) == position]  # fmt: skip
    for same in ("key", "inputs", "code"):
        for row in candidates:
            if same == "key" and row["code"] == key["code"] and row["inputs"] == key["inputs"]:
                return row
            if same != "key" and row[same] == key[same]:
                return row
    return candidates[0] if candidates else None


def _code_parts(ledger: Any, run_pk: int, step: str) -> list[list[str]]:
    row = reads.step_code(ledger, run_pk, step)
    return json.loads(row["parts"]) if row else []


def _code_changes(before: list[list[str]], after: list[list[str]]) -> list[str]:
    old = {(kind, name): sha for kind, name, sha in before}
    new = {(kind, name): sha for kind, name, sha in after}
    changes = [f"{kind} {name} changed" for (kind, name), sha in new.items()
               if (kind, name) in old and old[(kind, name)] != sha]  # fmt: skip
    changes += [f"{kind} {name} is new" for kind, name in new if (kind, name) not in old]
    changes += [f"{kind} {name} is gone" for kind, name in old if (kind, name) not in new]
    return changes or ["changed (the earlier run did not record its parts)"]


def _input_changes(ledger: Any, before_pk: int, after_pk: int) -> list[str]:
    before, after = _inputs(ledger, before_pk), _inputs(ledger, after_pk)
    if len(before) != len(after):
        return [f"{len(before)} input(s) before, {len(after)} now"]
    changes = []
    for index, (old, new) in enumerate(zip(before, after)):
        where = f" (input {index})" if len(after) > 1 else ""
        for name in sorted(old.keys() | new.keys()):
            if name not in new:
                changes.append(f"{name}{where} is gone")
            elif name not in old:
                changes.append(f"{name}{where} is new")
            elif old[name] != new[name]:
                changes.append(f"{name}{where} changed ({old[name][:8]} -> {new[name][:8]})")
    return changes or ["the parameters or the inputs' order changed"]


def _inputs(ledger: Any, task_pk: int) -> list[_Shas]:
    """name -> sha per parent of a task (in parent pk order); a start task has none."""
    maps: dict[int, _Shas] = {}
    for parent, name, sha in reads.parent_artifact_shas(ledger, task_pk):
        maps.setdefault(parent, {})[name] = sha
    return [maps[pk] for pk in sorted(maps)]
