"""A task's attempts, as Metaflow's local runtime makes them (owner: compat).

The runtime (runtime.py) and the task (task.py) ask this module four questions, each with
a one-line hook, so the rules live in one place and the task path stays someone else's:

- **May the task run again?** (`may_retry`) While @retry allows (`times`), as before; and
  with @catch, once more after a task whose *process died* (kill -9, the OOM killer, a
  segfault): Metaflow then runs a fallback attempt that does not call the step but records
  `FailureHandledByCatch` in the @catch variable, and the run goes on.
- **What does the next attempt run?** (`step_function`) The step, or that fallback.
- **How long before it starts?** (`pause_before`) Metaflow's local retries are immediate,
  but each attempt is a new interpreter, so attempts land ~0.3 s apart and four of them
  span more than a second; a flow written against that (a transient failure that passes
  within a second) recovers there. Ours start in milliseconds, so a retry waits a short,
  growing pause instead (0.2 s, 0.4 s, 0.8 s, ... at most 2 s). `minutes_between_retries`
  does not make a laptop wait minutes (Metaflow applies it only on remote compute), but
  `minutes_between_retries=0` asks for no wait and gets none.
- **What does the metadata say about each attempt?** (`attempt_facts`) Metaflow records
  `attempt`, `attempt_ok` and `attempt-done` per attempt, all read from the ledger's rows.

It also words a segfault as Metaflow does ("Task failed with a segmentation fault.").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .decorators import step_decorator
from .exceptions import FailureHandledByCatch, TaskCrashed

if TYPE_CHECKING:
    from .taskspec import TaskResult, TaskSpec

# Metaflow's @catch allows this many attempts past @retry's for a task whose process died
# (metaflow/plugins/catch_decorator.py: NUM_FALLBACK_RETRIES).
NUM_FALLBACK_RETRIES = 3

# The pause before retry n (n >= 1): FIRST_PAUSE * 2 ** (n - 1), at most MAX_PAUSE seconds.
# Four attempts (@retry's default times=3) then span 1.4 s with no gap as long as a second:
# one of them lands in each next second, as Metaflow's ~0.3 s interpreter starts do.
FIRST_PAUSE = 0.2
MAX_PAUSE = 2.0

_CRASHED = f"{TaskCrashed.__module__}.{TaskCrashed.__name__}"


# -- the runtime's questions ------------------------------------------------------------


def process_died(result: TaskResult) -> bool:
    """The task's process ended without a result (a signal, os._exit, the OOM killer)."""
    return result.status == "failed" and result.exception_type == _CRASHED


def may_retry(flow_cls: type, spec: TaskSpec, result: TaskResult) -> bool:
    """Whether a failed attempt gets another: @retry's, then @catch's fallback."""
    if spec.attempt < spec.max_retries:
        return True
    if not process_died(result) or _catch(flow_cls, spec) is None:
        return False
    return spec.attempt < spec.max_retries + NUM_FALLBACK_RETRIES


def retry_note(flow_cls: type, spec: TaskSpec) -> str:
    """What the console says as attempt `spec.attempt` is scheduled."""
    if is_fallback(spec):
        return "Task fallback is starting to handle the failure."  # Metaflow's words
    pause = pause_before(flow_cls, spec)
    wait = f" in {pause:g} s" if pause else ""
    return f"Retrying{wait} (attempt {spec.attempt + 1} of {spec.max_retries + 1})."


# -- the task's questions -----------------------------------------------------------------


def is_fallback(spec: TaskSpec) -> bool:
    """An attempt past @retry's: only @catch's fallback runs one (see may_retry)."""
    return spec.attempt > spec.max_retries


def step_function(flow: Any, spec: TaskSpec) -> Callable[..., Any]:
    """What this attempt calls: the step (with the variables of its @secrets inline sources
    set while it runs), or, for the fallback attempt, a function raising
    FailureHandledByCatch, which @catch then records as it records any exception."""
    if not is_fallback(spec) or _catch(type(flow), spec) is None:
        step = getattr(flow, spec.step)
        secrets = step_decorator(step, "secrets")
        if secrets is None:
            return step
        from .secret_sources import with_secrets

        return with_secrets(step, secrets)

    def fallback_step(*inputs: Any) -> None:
        raise FailureHandledByCatch(spec.attempt)

    return fallback_step


def pause_before(flow_cls: type, spec: TaskSpec) -> float:
    """Seconds attempt `spec.attempt` waits before it starts (0 for a first attempt, a
    fallback, and `@retry(minutes_between_retries=0)`)."""
    if spec.attempt == 0 or is_fallback(spec):
        return 0.0
    retry = step_decorator(getattr(flow_cls, spec.step, None), "retry")
    if retry is None or not retry.attributes.get("minutes_between_retries"):
        return 0.0
    return min(FIRST_PAUSE * 2 ** (spec.attempt - 1), MAX_PAUSE)


def wait_before_attempt(spec: TaskSpec) -> None:
    """Called as a task starts: a retry waits its pause (in the task's own worker, so the
    runtime goes on with other tasks meanwhile)."""
    if spec.attempt == 0:
        return
    from .flowclasses import flow_class

    pause = pause_before(flow_class(spec), spec)
    if pause:
        time.sleep(pause)


def _catch(flow_cls: type, spec: TaskSpec) -> Any:
    return step_decorator(getattr(flow_cls, spec.step, None), "catch")


# -- what the client reads back -------------------------------------------------------------


def attempt_facts(row: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(name, value, type) of the metadata Metaflow records for one attempt of a task:
    `attempt` when it starts; `attempt_ok` and `attempt-done` when it ends with a result
    (an attempt whose process died records neither, as in Metaflow)."""
    attempt = int(row["attempt"])
    facts = [("attempt", attempt, "attempt")]
    status = row["status"]
    if status in ("running", "crashed", "interrupted") or row["exception_type"] == _CRASHED:
        return facts
    facts.append(("attempt_ok", status in ("succeeded", "caught"), "internal_attempt_status"))
    facts.append(("attempt-done", attempt, "attempt-done"))
    return facts


# -- how a crash is worded -------------------------------------------------------------------


def segfault_message(signum: int, name: str) -> str:
    """A task's process killed by SIGSEGV: Metaflow's sentence, then the signal."""
    return (f"Task failed with a segmentation fault. The task's process crashed with signal "
            f"{signum} ({name}).")  # fmt: skip
