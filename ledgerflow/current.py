"""`current`: what the running task is, as in Metaflow. Per thread, so concurrent tasks
each see their own values."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

_FIELDS = (
    "flow_name", "run_id", "step_name", "task_id", "retry_count", "origin_run_id",
    "username", "tags", "namespace", "parameter_names", "project_name", "branch_name",
    "project_flow_name", "is_user_branch",
)  # fmt: skip


def get_username() -> str:
    """The user as Metaflow resolves it: $METAFLOW_USER, $SUDO_USER, $USERNAME, $USER."""
    for var in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER"):
        value = os.environ.get(var)
        if value and value != "root":
            return value
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "unknown"


def _no_client() -> tuple[type, type]:
    raise AttributeError(
        "current.run and current.task need the Client API: import current "
        "from ledgerflow, whose package face hands it the client"
    )


# The Client API's (Run, Task), for `current.run` and `current.task`. The client reads the
# ledger a running task writes, so it sits above this module: the package face
# (ledgerflow/__init__.py), which Python loads before any module of the package, hands it
# in with `use_client`.
_client_classes: Callable[[], tuple[type, type]] = _no_client


def use_client(classes: Callable[[], tuple[type, type]]) -> None:
    """Set where `current.run` and `current.task` find the Client API's `Run` and `Task`:
    the package face calls this once, on import."""
    global _client_classes
    _client_classes = classes


# The key `_set_later` keeps its maker under (not a field name, nor an attribute's).
_LATER = " later"


class Current:
    """Attributes of the task running in this thread (None outside a running flow)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __reduce__(self) -> str:
        # By reference: a flow shipped by value to a Dask worker (cloudpickle) refers to
        # that process's own `current`, not a copy of this one.
        return "current"

    def _set(self, **values: Any) -> None:
        self._local.__dict__.clear()
        self._local.__dict__.update(values)
        if values.get("tags") is not None:
            # A set the step may change (`current.tags.add(...)`), as Metaflow's: the run's
            # user tags, this task's copy (changing it tags nothing; use current.run).
            self._local.__dict__["tags"] = set(values["tags"])

    def _set_later(self, make: Callable[[Any], dict[str, Any]], arg: Any) -> None:
        """Set the values `make(arg)` gives when the task first reads one (a task in a
        process of its own: most steps never read `current`, and building its values
        cost each task ~40 page faults, measured)."""
        d = self._local.__dict__
        d.clear()
        d[_LATER] = (make, arg)

    def _values(self) -> dict[str, Any]:
        d: dict[str, Any] = self._local.__dict__
        later = d.get(_LATER)
        if later is not None:
            make, arg = later
            self._set(**make(arg))
            d = self._local.__dict__
        return d

    def _clear(self) -> None:
        self._local.__dict__.clear()

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            return self._values().get(name)
        raise AttributeError(f"current has no attribute '{name}'")

    @property
    def is_production(self) -> bool:
        """True for a @project flow run with --production (or $METAFLOW_PRODUCTION)."""
        return bool(self._values().get("is_production"))

    @property
    def run(self) -> Any:
        """The running run as a Client API `Run` (readable and taggable while it runs);
        None outside a running flow."""
        d = self._values()
        if not d.get("run_id"):
            return None
        run_class, _ = _client_classes()
        return run_class(f"{d['flow_name']}/{d['run_id']}", ledger=d.get("ledger_path"),
                   _namespace_check=False)  # fmt: skip

    @property
    def task(self) -> Any:
        """The running task as a Client API `Task`; None outside a running flow."""
        d = self._values()
        if not d.get("run_id"):
            return None
        _, task_class = _client_classes()
        return task_class(self.pathspec, ledger=d.get("ledger_path"), _namespace_check=False)

    @property
    def is_running_flow(self) -> bool:
        return bool(self._values().get("run_id"))

    @property
    def pathspec(self) -> str | None:
        d = self._values()
        if not d.get("run_id"):
            return None
        return f"{d['flow_name']}/{d['run_id']}/{d['step_name']}/{d['task_id']}"

    @property
    def tempdir(self) -> str | None:
        """A temporary folder for the running task, removed when the process exits."""
        d = self._values()
        if not d.get("run_id"):
            return None
        if "tempdir" not in d:
            import tempfile

            d["tempdir"] = tempfile.mkdtemp(prefix=f"ledgerflow-{d['step_name']}-")
        return d["tempdir"]

    @property
    def card(self) -> Any:
        """The running task's cards: `current.card.append(Markdown(...))` (ledgerflow/cards)."""
        from .cards.collector import collector_for

        if self.pathspec is None:
            raise AttributeError("current.card is available only inside a running step")
        return collector_for(self.pathspec)

    def _ledger_path(self) -> str | None:
        """The ledger the running task writes to (the Client API reads it inside steps)."""
        return self._values().get("ledger_path")

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None)
        return default if value is None else value

    def __repr__(self) -> str:
        return f"current(pathspec={self.pathspec!r})"


current = Current()
