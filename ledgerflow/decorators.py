"""Step decorators: `@step` marks a method as a step; the others annotate it.

`@retry`, `@catch` and `@timeout` change how a task runs (see `task.py` and `runtime.py`).
`@resources` and the other decorators Metaflow users commonly leave on their flows
(`@batch`, `@kubernetes`, `@conda`, `@pypi`, `@card`, `@secrets`, ...) are accepted and
recorded in `_graph_info`; `@environment(vars=...)` also sets the variables for the task.
Like Metaflow, each may be used bare (`@retry`) or with attributes (`@retry(times=2)`),
placed above `@step`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from .config_values import UNPACK_KEY, has_delayed
from .exceptions import InvalidDecoratorAttribute, LedgerflowError

F = TypeVar("F", bound=Callable[..., Any])


def step(f: F) -> F:
    """Mark a FlowSpec method as a step of the flow."""
    f.is_step = True  # type: ignore[attr-defined]
    if not hasattr(f, "decorators"):
        f.decorators = []  # type: ignore[attr-defined]
    return f


class StepDecorator:
    """A decorator's name and attributes, attached to the step function."""

    name = "decorator"
    defaults: dict[str, Any] = {}

    def __init__(self, **attributes: Any):
        unknown = [k for k in attributes if k not in self.defaults]
        if unknown:
            supported = ", ".join(self.defaults) or "none"
            raise InvalidDecoratorAttribute(
                f"Decorator '@{self.name}' does not support the attribute "
                f"'{unknown[0]}'; supported attributes: {supported}"
            )
        self.attributes = {**self.defaults, **attributes}

    def __call__(self, f: F) -> F:
        if not hasattr(f, "decorators"):
            f.decorators = []  # type: ignore[attr-defined]
        if any(d.name == self.name for d in f.decorators):  # type: ignore[attr-defined]
            raise InvalidDecoratorAttribute(f"Step '{f.__name__}' has @{self.name} twice; keep one")
        f.decorators.append(self)  # type: ignore[attr-defined]
        return f

    def to_info(self) -> dict[str, Any]:
        return {"name": self.name, "attributes": _plain(self.attributes),
                "statically_defined": True}  # fmt: skip

    def __repr__(self) -> str:
        return f"@{self.name}({', '.join(f'{k}={v!r}' for k, v in self.attributes.items())})"


def _plain(value: Any) -> Any:
    if getattr(type(value), "_lf_delayed", False):
        return value  # a config read: configs.apply_configs evaluates it before the run
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class RetryDecorator(StepDecorator):
    """Retry a failing task `times` times, waiting `minutes_between_retries` in between."""

    name = "retry"
    defaults = {"times": 3, "minutes_between_retries": 2}

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        times = self.attributes["times"]
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise InvalidDecoratorAttribute(f"@retry(times={times!r}) needs a whole number >= 0")
        minutes = self.attributes["minutes_between_retries"]
        if not isinstance(minutes, (int, float)) or minutes < 0:
            raise InvalidDecoratorAttribute(
                f"@retry(minutes_between_retries={minutes!r}) needs a number >= 0"
            )


class CatchDecorator(StepDecorator):
    """Let the flow go on when the step fails, storing the exception in `var`."""

    name = "catch"
    defaults = {"var": None, "print_exception": True}


class TimeoutDecorator(StepDecorator):
    """Fail the task when it runs longer than seconds + minutes + hours."""

    name = "timeout"
    defaults = {"seconds": 0, "minutes": 0, "hours": 0}

    @property
    def total_seconds(self) -> float:
        a = self.attributes
        total = float(a["seconds"] or 0) + 60 * float(a["minutes"] or 0)
        return total + 3600 * float(a["hours"] or 0)

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        if self.total_seconds <= 0:
            raise InvalidDecoratorAttribute(
                "@timeout needs a positive duration, e.g. @timeout(seconds=30) or "
                "@timeout(minutes=5)"
            )


class EnvironmentDecorator(StepDecorator):
    """Set environment variables while the step runs."""

    name = "environment"
    defaults = {"vars": {}}

    def to_info(self) -> dict[str, Any]:
        # The run's _graph_info is stored in the ledger (and shared with it): the variables'
        # names only, never their values (often credentials).
        info = super().to_info()
        info["attributes"] = {
            **info["attributes"],
            "vars": {str(k): None for k in self.attributes["vars"] or {}},
        }
        return info


def _accepting(name: str, defaults: dict[str, Any]) -> type[StepDecorator]:
    """A decorator ledgerflow records but does not act on (it runs everything locally)."""
    doc = f"@{name}: accepted and recorded; ledgerflow runs the step locally."
    return type(f"{name.title()}Decorator", (StepDecorator,),
                {"name": name, "defaults": defaults, "__doc__": doc})  # fmt: skip


ResourcesDecorator = _accepting(
    "resources", {"cpu": 1, "gpu": None, "disk": None, "memory": 4096, "shared_memory": None}
)
_ANY = {k: None for k in (
    "cpu", "gpu", "memory", "disk", "image", "queue", "iam_role", "execution_role",
    "shared_memory", "max_swap", "swappiness", "use_tmpfs", "tmpfs_size", "tmpfs_path",
    "inferentia", "trainium", "efa", "namespace", "service_account", "secrets",
    "node_selector", "tolerations", "persistent_volume_claims", "port", "compute_pool",
    "packages", "libraries", "python", "disabled", "type", "id", "options", "timeout",
    "sources", "role", "ephemeral_storage", "labels", "annotations",
)}  # fmt: skip
BatchDecorator = _accepting("batch", _ANY)
KubernetesDecorator = _accepting("kubernetes", _ANY)
CondaDecorator = _accepting("conda", _ANY)
PypiDecorator = _accepting("pypi", _ANY)


class CardDecorator(StepDecorator):
    """Render a card (an HTML report) when the task ends; see ledgerflow/cards/. Several
    per step are allowed, with or without ids, as in Metaflow (ids shared by two cards are
    warned about when the task runs: `current.card[ID]` cannot tell them apart)."""

    name = "card"
    defaults = {"type": "default", "id": None, "options": {}, "scope": "task", "rank": None,
                "timeout": 45, "save_errors": True, "customize": False,
                "refresh_interval": 5}  # fmt: skip

    def __call__(self, f: F) -> F:
        if not hasattr(f, "decorators"):
            f.decorators = []  # type: ignore[attr-defined]
        f.decorators.append(self)  # type: ignore[attr-defined]
        return f


class SecretsDecorator(StepDecorator):
    """Set the variables of `inline` sources while the step runs, as Metaflow's inline
    provider does; other sources are recorded, not fetched (see secret_sources.py)."""

    name = "secrets"
    defaults = {"sources": [], "role": None, "allow_override": False}

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        from .secret_sources import check_sources

        check_sources(self.attributes["sources"])

    def to_info(self) -> dict[str, Any]:
        from .secret_sources import recorded_attributes

        info = super().to_info()
        info["attributes"] = _plain(recorded_attributes(self.attributes))
        return info


def _factory(cls: type[StepDecorator]) -> Callable[..., Any]:
    def decorator(f: Any = None, **attributes: Any) -> Any:
        if callable(f) and not attributes:
            return cls()(f)  # bare: @retry
        if f is not None:
            raise InvalidDecoratorAttribute(f"use @{cls.name}(...) with keyword attributes only")
        return _deferred(cls, attributes) or cls(**attributes)

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


def _deferred(cls: type[StepDecorator], attributes: dict[str, Any]) -> Any:
    """A step decorator whose attributes read configs: made without its checks, which run
    once `configs.apply_configs` has the values. None when no attribute reads a config."""
    if not has_delayed(attributes):
        return None
    deco = cls.__new__(cls)
    shown = {k: v for k, v in attributes.items() if not str(k).startswith(UNPACK_KEY)}
    deco.attributes = {**dict(getattr(cls, "defaults", {})), **shown}
    deco._lf_raw = dict(attributes)  # type: ignore[attr-defined]
    return deco


retry = _factory(RetryDecorator)
catch = _factory(CatchDecorator)
timeout = _factory(TimeoutDecorator)
environment = _factory(EnvironmentDecorator)
resources = _factory(ResourcesDecorator)
batch = _factory(BatchDecorator)
kubernetes = _factory(KubernetesDecorator)
conda = _factory(CondaDecorator)
pypi = _factory(PypiDecorator)
card = _factory(CardDecorator)
secrets = _factory(SecretsDecorator)


class ReuseDecorator(StepDecorator):
    """`@reuse(False)`: this step always runs under `run --reuse` (it reads files, the
    network, the clock or randomness). `@reuse` alone, or `@reuse(True)`, is the default."""

    name = "reuse"
    defaults = {"enabled": True}

    def __init__(self, enabled: bool = True, **attributes: Any):
        if not isinstance(enabled, bool):
            raise InvalidDecoratorAttribute(
                f"@reuse takes True or False, not {enabled!r}; write @reuse(False) for a step "
                "that must always run"
            )
        super().__init__(enabled=enabled, **attributes)


def reuse(*args: Any, **kwargs: Any) -> Any:
    """`@reuse(False)` on a step: never reuse it. Usable bare (`@reuse`) too."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return ReuseDecorator()(args[0])
    return ReuseDecorator(*args, **kwargs)


def flow_decorator(name: str) -> Callable[..., Any]:
    """Flow-level decorators (`@project`, `@schedule`, ...): accepted and recorded."""

    def decorator(cls: Any = None, **attributes: Any) -> Any:
        def apply(flow_cls: Any) -> Any:
            recorded = dict(getattr(flow_cls, "_flow_decorators", {}))
            recorded[name] = _plain(attributes)
            flow_cls._flow_decorators = recorded
            return flow_cls

        if isinstance(cls, type) and not attributes:
            return apply(cls)
        return apply

    decorator.__name__ = name
    return decorator


project = flow_decorator("project")
schedule = flow_decorator("schedule")
conda_base = flow_decorator("conda_base")
pypi_base = flow_decorator("pypi_base")
trigger = flow_decorator("trigger")
trigger_on_finish = flow_decorator("trigger_on_finish")


def step_decorator(func: Any, name: str) -> StepDecorator | None:
    """The step's decorator called `name`, if any."""
    for deco in getattr(func, "decorators", []):
        if deco.name == name:
            return deco
    return None


STEP_DECORATORS: dict[str, type[StepDecorator]] = {
    cls.name: cls
    for cls in (RetryDecorator, CatchDecorator, TimeoutDecorator, EnvironmentDecorator,
                ResourcesDecorator, BatchDecorator, KubernetesDecorator, CondaDecorator,
                PypiDecorator, CardDecorator, SecretsDecorator)
}  # fmt: skip


def parse_with(spec: str) -> StepDecorator:
    """A decorator from Metaflow's `--with` syntax: 'retry' or 'retry:times=2,minutes_between_retries=0'."""
    import ast

    name, _, args = spec.partition(":")
    cls = STEP_DECORATORS.get(name.strip())
    if cls is None:
        raise LedgerflowError(
            f"--with {spec!r}: no decorator '{name}'; use one of {', '.join(sorted(STEP_DECORATORS))}"
        )
    attributes: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in args.split(","))):
        key, eq, raw = pair.partition("=")
        if not eq:
            raise LedgerflowError(f"--with {spec!r}: write attributes as key=value")
        try:
            attributes[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            attributes[key.strip()] = raw.strip()
    return cls(**attributes)


# {flow class name: [--with specs]}: what tasks started as fresh interpreters (`--executor
# spawn`) apply to the class they load (flowclasses.load_flow_class), as configs are.
ENV_WITH = "LEDGERFLOW_FLOW_WITH"


def apply_with(flow_cls: type, specs: list[str]) -> None:
    """Add `--with` decorators to every step that does not already have one of that name."""
    decorators = [parse_with(spec) for spec in specs]
    # (what the run's early fork server applies again to its copy: executors/early.py; and
    # tasks in fresh interpreters, through the environment)
    applied = [*flow_cls.__dict__.get("_lf_with_applied", ()), *specs]
    flow_cls._lf_with_applied = applied  # type: ignore[attr-defined]
    if specs:
        import json
        import os

        exported = _exported_with()
        exported[flow_cls.__name__] = applied
        os.environ[ENV_WITH] = json.dumps(exported)
    for attr in dir(flow_cls):
        func = getattr(flow_cls, attr, None)
        if func is None or not getattr(func, "is_step", False):
            continue
        for deco in decorators:
            if step_decorator(func, deco.name) is None:
                func.decorators.append(deco)


def apply_with_from_environment(flow_cls: type) -> None:
    """In a task started as a fresh interpreter: the run's `--with` decorators, if any."""
    specs = _exported_with().get(flow_cls.__name__)
    if specs and "_lf_with_applied" not in flow_cls.__dict__:
        apply_with(flow_cls, [str(spec) for spec in specs])


def _exported_with() -> dict[str, Any]:
    return exported_per_flow(ENV_WITH)


def exported_per_flow(variable: str) -> dict[str, Any]:
    """What the run exported for tasks in fresh interpreters in an environment variable, a
    JSON object by flow class name ($LEDGERFLOW_FLOW_WITH, configs' $LEDGERFLOW_FLOW_CONFIGS);
    {} when unset or unreadable."""
    import json
    import os

    try:
        found = json.loads(os.environ.get(variable) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# -- @project: branch and flow names exactly as Metaflow composes them ------------------------

_PROJECT_NAME = re.compile(r"^[a-z0-9_]+$")


def project_info(flow_cls: type, username: str, branch: str | None = None,
                 production: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """`current`'s project fields for a flow with @project (else {}): project_name,
    branch_name, project_flow_name, is_user_branch, is_production.

    The branch comes from @project(branch=, production=), else the arguments (the
    `--branch`/`--production` options), else $METAFLOW_BRANCH / $METAFLOW_PRODUCTION, as
    Metaflow reads them: `prod[.B]` in production, `test.B` for a branch B, else
    `user.<username>` ($METAFLOW_OWNER overrides the user)."""
    import os

    attrs = getattr(flow_cls, "_flow_decorators", {}).get("project")
    if attrs is None:
        return {}
    name = attrs.get("name")
    if branch is None:
        branch = os.environ.get("METAFLOW_BRANCH") or None
    if production is None:
        production = os.environ.get("METAFLOW_PRODUCTION", "").lower() in ("1", "true", "yes")
    if attrs.get("branch") is not None:
        branch = attrs["branch"]
    if attrs.get("production") is not None:
        production = bool(attrs["production"])
    for what, value in (("@project name", name), ("branch name", branch)):
        if value is None and what == "branch name":
            continue
        if not isinstance(value, str) or not _PROJECT_NAME.match(value) or len(value) > 128:
            raise LedgerflowError(
                f"The {what} {value!r} of {flow_cls.__name__} is not valid; use only lowercase "
                "letters, digits and underscores (at most 128), e.g. @project(name='my_project')"
            )
    if branch:
        branch_name = f"prod.{branch}" if production else f"test.{branch}"
    elif production:
        branch_name = "prod"
    else:
        branch_name = f"user.{os.environ.get('METAFLOW_OWNER', username)}"
    return {"project_name": name, "branch_name": branch_name,
            "project_flow_name": f"{name}.{branch_name}.{flow_cls.__name__}",
            "is_user_branch": not branch and not production,
            "is_production": bool(production)}  # fmt: skip


def project_tags(flow_cls: type, username: str) -> list[str]:
    """Metaflow's system tags for a @project run: project:NAME, project_branch:BRANCH."""
    info = project_info(flow_cls, username)
    if not info:
        return []
    return [f"project:{info['project_name']}", f"project_branch:{info['branch_name']}"]


# -- what ledgerflow does not do ---------------------------------------------------------------


class ParallelDecorator(StepDecorator):
    """@parallel (Metaflow's multi-node steps): refused when the flow starts."""

    name = "parallel"


parallel = _factory(ParallelDecorator)


def unsupported_features(flow_cls: type) -> list[str]:
    """One line per Metaflow feature the flow uses that ledgerflow does not have; the flow
    command refuses to start (exit 1) when there is any."""
    from .parameters import Unsupported

    found = []
    for attr in dir(flow_cls):
        value = getattr(flow_cls, attr, None)
        if isinstance(value, Unsupported):
            found.append(value.message(f"{flow_cls.__name__}.{attr}"))
        elif getattr(value, "is_step", False) and step_decorator(value, "parallel"):
            found.append(
                f"Step '{attr}' uses @parallel (multi-node steps), which ledgerflow does not "
                "support; remove @parallel to run the step as a single task"
            )
    # config_expr() sits inside decorator attributes: any made while the flow loaded counts.
    found += [u.message(flow_cls.__name__) for u in Unsupported.created
              if u.feature == "config_expr"]  # fmt: skip
    return found


# Decorators recorded but not applied, with what ledgerflow does instead.
_INSTEAD = {
    "batch": "runs them on this machine",
    "kubernetes": "runs them on this machine",
    "conda": "does not build environments: they run in this Python",
    "pypi": "does not build environments: they run in this Python",
    "secrets": "fetches no secrets: set the variables they would hold in the environment",
}


def unapplied_warnings(flow_cls: type, environment: str | None = None) -> list[str]:
    """One warning per decorator (and `--environment`) that ledgerflow records but does not
    apply, naming the steps, what happens instead, and for @pypi/@conda the listed packages
    missing from this Python."""
    steps: dict[str, list[tuple[str, StepDecorator]]] = {}
    for attr in sorted(dir(flow_cls)):
        func = getattr(flow_cls, attr, None)
        if not getattr(func, "is_step", False):
            continue
        for deco in getattr(func, "decorators", []):
            if deco.name == "secrets" and not _unapplied_secrets(deco):
                continue  # only inline sources: applied
            if deco.name in _INSTEAD:
                steps.setdefault(deco.name, []).append((attr, deco))
    warnings = []
    flow_decos = getattr(flow_cls, "_flow_decorators", {})
    for base in ("conda_base", "pypi_base"):
        if base in flow_decos:
            missing = _missing_packages(flow_decos[base])
            warnings.append(
                f"Warning: @{base} is recorded, not applied: ledgerflow does not build "
                f"environments; every step runs in this Python ({sys.executable})."
                + _install_hint(missing)
                + _python_pin_note([flow_decos[base]])
            )
    for name, used in steps.items():
        where = ", ".join(step for step, _ in used)
        text = (f"Warning: @{name} on step{'s' if len(used) > 1 else ''} {where} is recorded, "
                f"not applied: ledgerflow {_INSTEAD[name]}")  # fmt: skip
        if name in ("conda", "pypi"):
            absent: list[str] = []
            for _, deco in used:
                absent += [m for m in _missing_packages(deco.attributes) if m not in absent]
            text += f" ({sys.executable})." + _install_hint(absent)
            text += _python_pin_note([deco.attributes for _, deco in used])
        elif name == "secrets":
            text += " before the run (inline sources are applied)."
        else:
            text += "; their cpu/memory/image settings are ignored."
        warnings.append(text)
    if environment and environment not in ("local",):
        warnings.append(
            f"Warning: --environment={environment} is not applied: ledgerflow runs every step "
            "in this Python; install what the flow needs into it (pip install ...)."
        )
    return warnings


def _unapplied_secrets(deco: StepDecorator) -> list[Any]:
    from .secret_sources import unapplied

    return unapplied(deco.attributes)


def _install_hint(missing: list[str]) -> str:
    if not missing:
        return " Every package it lists is installed here."
    quoted = " ".join(f"'{m}'" for m in missing)
    return f" Missing here: {', '.join(missing)}; install with: pip install {quoted}"


def _missing_packages(attributes: dict[str, Any]) -> list[str]:
    """The `packages=` (and `libraries=`) of @pypi/@conda not installed in this Python, as
    pip requirement strings ('pandas==2.1.0'); a different installed version counts."""
    from importlib import metadata

    wanted: dict[str, Any] = {}
    for key in ("packages", "libraries"):
        value = attributes.get(key) or {}
        if isinstance(value, dict):
            wanted.update(value)
    missing = []
    for package, version in wanted.items():
        spec = f"{package}=={version}" if version else str(package)
        try:
            installed = metadata.version(str(package))
        except metadata.PackageNotFoundError:
            missing.append(spec)
            continue
        if version and not _version_matches(installed, str(version)):
            missing.append(spec)
    return missing


def _version_matches(installed: str, wanted: str) -> bool:
    """Metaflow pins exact versions ('2.1.0'); a range ('>=2') is taken as satisfied."""
    if any(c in wanted for c in "<>=!~,*"):
        return True
    return installed == wanted or installed.startswith(wanted + ".")


def _python_pin_note(attributes: list[dict[str, Any]]) -> str:
    """@conda/@pypi(python="3.9.10") that this Python does not match: said, since the
    packages being installed does not make the environment the one pinned."""
    here = ".".join(str(p) for p in sys.version_info[:3])
    pins = sorted({str(a["python"]) for a in attributes if a.get("python")})
    wrong = [p for p in pins if not _version_matches(here, p)]
    if not wrong:
        return ""
    return (f" It pins python {', '.join(wrong)} but this is Python {here}: use a Python of "
            "that version to run it as pinned.")  # fmt: skip
