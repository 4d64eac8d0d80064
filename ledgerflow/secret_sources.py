"""`@secrets(sources=[...])`: which sources ledgerflow applies, and how (owner: compat).

Metaflow's `inline` provider (`{"type": "inline", "id": "1", "options": {"env_vars":
{...}}}`) sets the variables it lists while the step runs; ledgerflow applies it the same
way, with Metaflow's checks (names like `[a-zA-Z_][a-zA-Z0-9_]*`, string values, no
`METAFLOW_` prefix, no variable set by two sources, none already in the environment unless
`allow_override=True`). Every other source (a secret manager's: `"db-creds"`,
`{"type": "aws-secrets-manager", ...}`) is recorded, not fetched: the run warns once, naming
the steps (decorators.unapplied_warnings).

Inline values are secrets: `_graph_info` (stored in the ledger, shared with it) keeps the
variables' names only.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from .exceptions import LedgerflowError, MetaflowException
from .stepenv import variables_set

INLINE = "inline"
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DISALLOWED_PREFIXES = ("METAFLOW_",)


def check_sources(sources: Any) -> None:
    """Refuse, in one line, what Metaflow refuses in a source list (when the flow loads,
    rather than when the step runs)."""
    if not isinstance(sources, (list, tuple)):
        raise LedgerflowError(
            f"@secrets(sources={sources!r}) needs a list of sources, e.g. "
            "@secrets(sources=['db-creds'])"
        )
    for source in sources:
        if isinstance(source, str):
            continue
        if not isinstance(source, dict):
            raise LedgerflowError(
                f"@secrets sources items must be either a string or a dict; got {source!r}"
            )
        kind = source.get("type")
        if kind is not None and not isinstance(kind, str):
            raise LedgerflowError(f"Bad @secrets specification - 'type' must be a string - "
                                  f"found {type(kind).__name__}")  # fmt: skip
        if kind == INLINE:
            if not isinstance(source.get("id"), str):
                raise LedgerflowError(
                    "Bad @secrets specification - 'id' must be a string - found "
                    f"{type(source.get('id')).__name__}; e.g. {{'type': 'inline', 'id': '1', "
                    "'options': {'env_vars': {...}}}"
                )
            options = source.get("options", {})
            if not isinstance(options, dict):
                raise LedgerflowError("Bad @secrets specification - 'options' must be a dict "
                                      f"- found {type(options).__name__}")  # fmt: skip
            _check_env_vars(source["id"], options.get("env_vars", {}))


def _check_env_vars(secret_id: str, env_vars: Any) -> None:
    """Metaflow's validate_env_vars, worded as ledgerflow's errors."""
    where = f"Invalid env vars from secret {secret_id}"
    if not isinstance(env_vars, dict):
        raise LedgerflowError(f"{where}: 'env_vars' must be a dict of names to strings")
    for key, value in env_vars.items():
        if not isinstance(key, str):
            raise LedgerflowError(f"{where}: found non string key {key!r}")
        if not isinstance(value, str):
            raise LedgerflowError(f"{where}: found non string value for {key} "
                                  f"({type(value).__name__}); give its value as a string")  # fmt: skip
        if not _NAME.fullmatch(key):
            raise LedgerflowError(f"{where}: found invalid env var name '{key}'")
        for prefix in _DISALLOWED_PREFIXES:
            if key.startswith(prefix):
                raise LedgerflowError(
                    f"{where}: found disallowed env var name '{key}' (starts with '{prefix}')"
                )


def is_inline(source: Any) -> bool:
    return isinstance(source, dict) and source.get("type") == INLINE


def unapplied(attributes: dict[str, Any]) -> list[Any]:
    """The sources of one @secrets that ledgerflow does not apply (all but inline ones)."""
    return [s for s in attributes.get("sources") or [] if not is_inline(s)]


def recorded_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The decorator's attributes as `_graph_info` keeps them: inline values removed."""
    sources = []
    for source in attributes.get("sources") or []:
        if is_inline(source):
            options = dict(source.get("options") or {})
            options["env_vars"] = {str(k): None for k in options.get("env_vars") or {}}
            source = {**source, "options": options}
        sources.append(source)
    return {**attributes, "sources": sources}


def with_secrets(step: Callable[..., Any], deco: Any) -> Callable[..., Any]:
    """The step, called with its inline secrets applied (a conflict fails the task, as in
    Metaflow)."""

    def call(*args: Any) -> Any:
        with applied(deco):
            return step(*args)

    return call


@contextlib.contextmanager
def applied(deco: Any) -> Iterator[None]:
    """While the step runs: the variables of the @secrets inline sources set (as Metaflow's
    task_pre_step sets them), then put back as they were."""
    with variables_set(_inline_values(deco) if deco is not None else {}):
        yield


def _inline_values(deco: Any) -> dict[str, str]:
    injected_by: dict[str, str] = {}
    values: dict[str, str] = {}
    for source in deco.attributes.get("sources") or []:
        if not is_inline(source):
            continue
        name = f"{source['id']} ({INLINE})"  # how Metaflow names a source in its errors
        for key, value in ((source.get("options") or {}).get("env_vars") or {}).items():
            if key in injected_by:
                raise MetaflowException(f"Secret '{name}' will inject '{key}' as env var, and "
                                        f"it is also added by '{injected_by[key]}'")  # fmt: skip
            # (the same value already there is no conflict: tasks sharing a process, with
            # --executor thread, would otherwise refuse each other's)
            if os.environ.get(key, value) != value and not deco.attributes.get("allow_override"):
                raise MetaflowException(
                    f"Secret '{name}' will inject '{key}' as env var, but it already exists "
                    "in env; unset it, or pass @secrets(..., allow_override=True)"
                )
            injected_by[key] = name
            values[key] = value
    return values
