"""Running flows from Python and notebooks, as Metaflow's Runner API (2.12+) does.

    with Runner("flow.py", pylint=False).run(alpha=3, tags=["a"]) as running:
        print(running.status, running.run.data.result)

    run = NBRunner(MyFlow).nbrun(alpha=3)      # a flow defined in a notebook cell

`Runner` starts `python FLOW_FILE [top-level options] run|resume [options]` as a subprocess
and learns the run id from the `--runner-attribute-file` the flow command writes as soon as
the run starts. Keyword arguments become command-line options the way Metaflow's click API
turns them: `True` is a flag, `False` a `--no-` flag where there is one, a list or tuple
repeats the option (`tags=["a", "b"]` is `--tag a --tag b`), a dict (or a list given to a
flow parameter) is JSON.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Self

from .exceptions import ExternalCommandFailed, LedgerflowError

# Keyword arguments whose option name differs from the keyword (Metaflow's click names).
_OPTION_NAMES = {"tags": "tag", "decospecs": "with", "with_decorators": "with",
                 "user_namespace": "namespace"}  # fmt: skip
_REPEATED = {"tags", "decospecs", "with_decorators", "top_with"}
_TOP_LEVEL_FLAGS = {"quiet", "debug", "production", "pylint", "force_rebuild_environments"}
_NO_FLAGS = {"pylint": "--no-pylint", "quiet": "--not-quiet",
             "force_rebuild_environments": "--no-force-rebuild-environments"}  # fmt: skip


class RunnerFailed(ExternalCommandFailed, subprocess.CalledProcessError):
    """The flow command exited before the run started (usage error, bad parameter, ...)."""

    # Also a `subprocess.CalledProcessError`, as Metaflow raises.

    def __init__(self, returncode: int, cmd: list[str], stderr: str):
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
        message = (f"{os.path.basename(cmd[1])} exited {returncode} before the run started: "
                   f"{last or 'no output'}")  # fmt: skip
        # Both bases' state, set directly: their __init__s take different arguments.
        Exception.__init__(self, message)
        self.message, self.line_no, self.source_file = message, None, None
        self.returncode, self.cmd, self.output, self.stderr = returncode, cmd, None, stderr

    def __str__(self) -> str:
        return self.message


class ExecutingRun:
    """A run started by `Runner`: its `run` (a Client API `Run`), the subprocess's
    `status`, `returncode`, `stdout` and `stderr`, `wait()` and `stream_log()`. A context
    manager: leaving it cleans up the runner's temporary files."""

    def __init__(self, runner: Runner, command: _Command, run: Any):
        self.runner = runner
        self.command_obj = command
        self.run = run

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.cleanup()

    async def wait(self, timeout: float | None = None, stream: str | None = None) -> ExecutingRun:
        """Wait for the run to end (at most `timeout` seconds, then the process is
        killed and the status is 'timeout'), printing `stream` ('stdout' or 'stderr')."""
        await self.command_obj.wait(timeout, stream)
        return self

    @property
    def returncode(self) -> int | None:
        """The subprocess's exit code; None while it runs."""
        return self.command_obj.process.poll()

    @property
    def status(self) -> str:
        """'running', 'successful', 'failed' or 'timeout' (of the subprocess)."""
        if self.command_obj.timed_out:
            return "timeout"
        code = self.returncode
        if code is None:
            return "running"
        return "successful" if code == 0 else "failed"

    @property
    def stdout(self) -> str:
        """What the subprocess printed on stdout so far."""
        return self.command_obj.read_log("stdout")

    @property
    def stderr(self) -> str:
        """What the subprocess printed on stderr so far."""
        return self.command_obj.read_log("stderr")

    async def stream_log(
        self, stream: str, position: int | None = None
    ) -> AsyncIterator[tuple[int, str]]:
        """(position, line) for each line of `stream` as it comes, until the process ends;
        start again from a `position` it gave."""
        async for item in self.command_obj.stream_log(stream, position):
            yield item

    def __repr__(self) -> str:
        return f"ExecutingRun({self.run.pathspec!r}, status={self.status!r})"


class _Command:
    """One subprocess, its output copied line by line into log files (and to the console
    when shown) by a thread per stream."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: str, log_dir: str,
                 show_output: bool):  # fmt: skip
        self.cmd = cmd
        self.timed_out = False
        self.log_files = {s: os.path.join(log_dir, f"{s}.log") for s in ("stdout", "stderr")}
        self.process = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self._copiers = [
            threading.Thread(target=self._copy, args=(pipe, stream, show_output), daemon=True)
            for pipe, stream in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr"))
        ]
        for t in self._copiers:
            t.start()

    def _copy(self, pipe: Any, stream: str, show: bool) -> None:
        with open(self.log_files[stream], "wb") as log:
            for line in iter(pipe.readline, b""):
                log.write(line)
                log.flush()
                if show:
                    out = sys.stdout if stream == "stdout" else sys.stderr
                    out.write(line.decode("utf-8", "replace"))
                    out.flush()
        pipe.close()

    @property
    def done(self) -> bool:
        """The process ended and all its output is in the log files."""
        return self.process.poll() is not None and not any(t.is_alive() for t in self._copiers)

    def sync_wait(self) -> None:
        self.process.wait()
        for t in self._copiers:
            t.join()

    async def wait(self, timeout: float | None, stream: str | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        position = 0
        while not self.done:
            if stream:
                position = self._print_new(stream, position)
            if deadline is not None and time.monotonic() > deadline:
                self.timed_out = True
                self.process.kill()
                self.sync_wait()
                break
            await asyncio.sleep(0.05)
        if stream:
            self._print_new(stream, position)

    def _print_new(self, stream: str, position: int) -> int:
        text, position = self._read_from(stream, position)
        if text:
            print(text, end="", flush=True)
        return position

    def _read_from(self, stream: str, position: int) -> tuple[str, int]:
        try:
            with open(self.log_files[stream], "rb") as f:
                f.seek(position)
                data = f.read()
        except FileNotFoundError:
            return "", position
        return data.decode("utf-8", "replace"), position + len(data)

    def _read_bytes(self, stream: str, position: int) -> bytes:
        try:
            with open(self.log_files[stream], "rb") as f:
                f.seek(position)
                return f.read()
        except FileNotFoundError:
            return b""

    def read_log(self, stream: str) -> str:
        return self._read_from(stream, 0)[0]

    async def stream_log(self, stream: str, position: int | None) -> AsyncIterator[tuple[int, str]]:
        if stream not in self.log_files:
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        position = position or 0
        pending = b""
        # Plain reads of a local log file (a few KB at a time) do not block the loop.
        while True:
            finished = self.done  # read after checking, so nothing written last is missed
            pending += self._read_bytes(stream, position + len(pending))
            *lines, pending = pending.split(b"\n")
            for line in lines:
                position += len(line) + 1
                yield position, line.decode("utf-8", "replace")
            if finished:
                if pending:
                    position += len(pending)
                    yield position, pending.decode("utf-8", "replace")
                return
            await asyncio.sleep(0.05)


class Runner:
    """Run a flow file from Python: `Runner("flow.py", **top_level_options)`, then
    `.run(**options_and_parameters)` (blocking), `.resume(...)`, `await .async_run(...)`,
    `await .async_resume(...)`. Works as a context manager (and an async one) that removes
    its temporary files at exit.

    `show_output` prints the run's output as it comes (blocking calls only); `env` adds
    environment variables; `cwd` is where the flow command runs (the default ledger is
    found from there); `file_read_timeout` bounds the wait for the run to start."""

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 file_read_timeout: int = 3600, **kwargs: Any):  # fmt: skip
        self.flow_file = os.path.abspath(flow_file)
        if not os.path.isfile(self.flow_file):
            raise LedgerflowError(f"Runner: no flow file at {self.flow_file}; pass the path "
                                  "of a flow script")  # fmt: skip
        self.show_output = show_output
        self.env_vars = {**os.environ, **(env or {})}
        if profile:
            self.env_vars["METAFLOW_PROFILE"] = profile
        self.cwd = cwd or os.getcwd()
        self.file_read_timeout = file_read_timeout
        self.top_level_kwargs = kwargs
        self._temp_dirs: list[str] = []

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the temporary files (logs, attribute files) of every run started here."""
        for path in self._temp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._temp_dirs = []

    # -- blocking ------------------------------------------------------------------------

    def run(self, **kwargs: Any) -> ExecutingRun:
        """Run the flow and wait for it to end; parameters and `run` options as keywords."""
        return self._blocking("run", kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """Resume a run (`step_to_rerun=`, `origin_run_id=`, ...) and wait for it to end."""
        return self._blocking("resume", kwargs)

    def _blocking(self, command: str, kwargs: dict[str, Any]) -> ExecutingRun:
        started, attribute_file = self._start(command, kwargs, self.show_output)
        started.sync_wait()
        return ExecutingRun(self, started, self._run_object(started, attribute_file))

    # -- non-blocking --------------------------------------------------------------------

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        """Start the run; return as soon as it has an id (await `.wait()` for its end)."""
        return await self._non_blocking("run", kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        """Start a resume; return as soon as the new run has an id."""
        return await self._non_blocking("resume", kwargs)

    async def _non_blocking(self, command: str, kwargs: dict[str, Any]) -> ExecutingRun:
        started, attribute_file = self._start(command, kwargs, show_output=False)
        deadline = time.monotonic() + self.file_read_timeout
        while not _has_content(attribute_file) and not started.done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run did not start within {self.file_read_timeout} s")
            await asyncio.sleep(0.05)
        return ExecutingRun(self, started, self._run_object(started, attribute_file))

    # -- the command ---------------------------------------------------------------------

    def _start(
        self, command: str, kwargs: dict[str, Any], show_output: bool
    ) -> tuple[_Command, str]:
        temp = tempfile.mkdtemp(prefix="ledgerflow-runner-")
        self._temp_dirs.append(temp)
        attribute_file = os.path.join(temp, "runner-attributes.json")
        cmd = [sys.executable, self.flow_file,
               *_top_level_args(self.top_level_kwargs),
               command, *_command_args(self.flow_file, command, kwargs),
               "--runner-attribute-file", attribute_file]  # fmt: skip
        return _Command(cmd, self.env_vars, self.cwd, temp, show_output), attribute_file

    def _run_object(self, started: _Command, attribute_file: str) -> Any:
        if not _has_content(attribute_file):
            started.sync_wait()
            raise RunnerFailed(started.process.returncode or 1, started.cmd,
                               started.read_log("stderr"))  # fmt: skip
        with open(attribute_file, encoding="utf-8") as f:
            content = json.load(f)
        from .client import Run

        ledger = content["metadata"].partition("@")[2]
        return Run(f"{content['flow_name']}/{content['run_id']}", ledger=ledger,
                   _namespace_check=False)  # fmt: skip


def _has_content(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def _top_level_args(kwargs: dict[str, Any]) -> list[str]:
    """Top-level options (before the command) from Runner(...)'s keywords."""
    args: list[str] = []
    for key, value in kwargs.items():
        if value is None:
            continue
        if key in ("config", "config_value"):
            args += _config_args(key, value)
            continue
        if key in _TOP_LEVEL_FLAGS and isinstance(value, bool):
            if value:
                args.append(f"--{key.replace('_', '-')}")
            elif key in _NO_FLAGS:
                args.append(_NO_FLAGS[key])
            continue
        args += _option(key, value, f"--{_OPTION_NAMES.get(key, key).replace('_', '-')}")
    return args


def _config_args(key: str, value: Any) -> list[str]:
    """`config=[("cfg", "cfg.json")]` is `--config cfg cfg.json`; `config_value=[("cfg",
    {"a": 1})]` (or a dict of them) is `--config-value cfg '{"a": 1}'`."""
    pairs = list(value.items()) if isinstance(value, dict) else list(value)
    option = "--config" if key == "config" else "--config-value"
    args: list[str] = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise LedgerflowError(f"Runner: {key}= takes (name, value) pairs or a dict of "
                                  f"them, not {pair!r}")  # fmt: skip
        name, given = pair
        if key == "config":
            text = os.fspath(given)  # a file's path
        else:
            text = given if isinstance(given, str) else json.dumps(given)
        args += [option, str(name), str(text)]
    return args


def _command_args(flow_file: str, command: str, kwargs: dict[str, Any]) -> list[str]:
    """`run`/`resume` options and flow parameters from keywords; parameters keep the name
    they were declared with (`Parameter("learning-rate")` is `learning_rate=`)."""
    params = _declared_parameter_names(flow_file)
    args: list[str] = []
    positional: list[str] = []
    for key, value in kwargs.items():
        if value is None:
            continue
        if command == "resume" and key == "step_to_rerun":
            positional.append(str(value))
            continue
        if key in params:
            option = f"--{params[key]}"
            if isinstance(value, (dict, list, tuple)):
                value = json.dumps(value)
            args += [option, str(value)]
            continue
        args += _option(key, value, f"--{_OPTION_NAMES.get(key, key).replace('_', '-')}")
    return args + positional


def _option(key: str, value: Any, option: str) -> list[str]:
    if isinstance(value, bool):
        return [option] if value else []
    if isinstance(value, (list, tuple, set)) and key in _REPEATED:
        return [part for item in value for part in (option, str(item))]
    if isinstance(value, (dict, list, tuple)):
        return [option, json.dumps(value)]
    return [option, str(value)]


def _declared_parameter_names(flow_file: str) -> dict[str, str]:
    """{keyword: declared name} of the Parameter/IncludeFile calls in the flow file, read
    from its syntax tree (the file is not imported here)."""
    try:
        with open(flow_file, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0]
        if called in ("Parameter", "IncludeFile") and isinstance(first, ast.Constant) \
                and isinstance(first.value, str):  # fmt: skip
            names[first.value.replace("-", "_")] = first.value
    return names


# -- notebooks ---------------------------------------------------------------------------------


class NBRunner:
    """`Runner` for a flow defined in a notebook cell: put `NBRunner(MyFlow).nbrun(alpha=3)`
    in the cell that defines `MyFlow` (or a later one). The cell's code up to the flow class is
    written to a temporary flow file in `base_dir` (default: the current directory) and run
    with `Runner`. `nbrun()`/`nbresume()` wait and return the Client API `Run`."""

    def __init__(self, flow: type, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, base_dir: str | None = None,
                 file_read_timeout: int = 3600, **kwargs: Any):  # fmt: skip
        self.flow = flow
        self.show_output = show_output
        self.cell = _current_cell(flow)
        env_vars = {**(env or {}), "JPY_PARENT_PID": ""}  # keep the server out of the run
        self.base_dir = base_dir if base_dir is not None else os.getcwd()
        script = format_flowfile(self.cell, flow.__name__)  # before any file exists
        _require_own_imports(script, flow.__name__)
        fd, path = tempfile.mkstemp(prefix=flow.__name__, suffix=".py", dir=self.base_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(script)
        self.tmp_flow_file = path
        self.runner = Runner(path, show_output=show_output, profile=profile, env=env_vars,
                             cwd=self.base_dir, file_read_timeout=file_read_timeout,
                             **kwargs)  # fmt: skip

    def nbrun(self, **kwargs: Any) -> Any:
        """Run the flow, wait, clean up (also when it could not start), and return its
        `Run`."""
        try:
            return self.runner.run(**kwargs).run
        finally:
            self.cleanup()

    def nbresume(self, **kwargs: Any) -> Any:
        """Resume, wait, clean up (also when it could not start), and return the new
        `Run`."""
        try:
            return self.runner.resume(**kwargs).run
        finally:
            self.cleanup()

    def run(self, **kwargs: Any) -> ExecutingRun:
        return self.runner.run(**kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        return self.runner.resume(**kwargs)

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_run(**kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_resume(**kwargs)

    def cleanup(self) -> None:
        """Remove the temporary flow file and the runner's files (after async_run, call it
        yourself; nbrun and nbresume do)."""
        if os.path.exists(self.tmp_flow_file):
            os.remove(self.tmp_flow_file)
        self.runner.cleanup()


def _current_cell(flow: type) -> str:
    """The source of the notebook cell being run (as Metaflow: IPython's input history),
    or, when the flow was defined in an earlier cell, that cell."""
    try:
        from IPython import get_ipython
    except ImportError:
        raise LedgerflowError(
            "NBRunner needs an interactive Python (Jupyter, IPython); from a script use "
            "Runner('flow.py')"
        ) from None
    ipython = get_ipython()
    if ipython is None:
        raise LedgerflowError(
            "NBRunner needs an interactive Python (Jupyter, IPython); from a script use "
            "Runner('flow.py')"
        )
    history = list(ipython.history_manager.input_hist_raw)
    for cell in reversed(history):
        if _flow_class_node(cell, flow.__name__) is not None:
            return cell
    raise LedgerflowError(
        f"NBRunner: no cell defines class {flow.__name__}(FlowSpec); define the flow in a "
        "cell of this notebook"
    )


def _flow_class_node(cell: str, name: str | None) -> ast.ClassDef | None:
    try:
        body = ast.parse(cell).body
    except SyntaxError:
        return None
    for node in body:
        if (
            isinstance(node, ast.ClassDef)
            and (name is None or node.name == name)
            and any(
                (isinstance(b, ast.Name) and b.id == "FlowSpec")
                or (isinstance(b, ast.Attribute) and b.attr == "FlowSpec")
                for b in node.bases
            )
        ):
            return node
    return None


def format_flowfile(cell: str, name: str | None = None) -> str:
    """A flow script from a cell: its lines up to the end of the flow class, then the
    `__main__` guard that starts the command line (as Metaflow writes it)."""
    node = _flow_class_node(cell, name)
    if node is None:
        raise LedgerflowError("The cell does not define a class that inherits from FlowSpec")
    lines = cell.splitlines()[: node.end_lineno]
    lines += ["if __name__ == '__main__':", f"    {node.name}()"]
    return "\n".join(lines) + "\n"


def _require_own_imports(script: str, flow_name: str) -> None:
    """The flow file NBRunner writes is the cell alone: a name the cell uses as the class is
    defined (FlowSpec, step, Parameter...) but imports in an earlier cell would fail there
    as `NameError`. Say so before anything runs, with the import to add."""
    import builtins

    from .nbcheck import unbound_at_import

    missing = [n for n in unbound_at_import(script) if not hasattr(builtins, n)]
    if not missing:
        return
    import ledgerflow

    ours = [n for n in missing if n in ledgerflow.__all__]
    others = [n for n in missing if n not in ours]
    fix = []
    if ours:
        fix.append(f"`from ledgerflow import {', '.join(ours)}`")
    if others:
        fix.append(f"the imports or definitions of {', '.join(others)}")
    raise LedgerflowError(
        f"NBRunner: the cell defining {flow_name} uses {', '.join(missing)} without "
        f"importing or defining {'it' if len(missing) == 1 else 'them'} (an earlier cell "
        f"does?); NBRunner runs that cell on its own as a script, so add {' and '.join(fix)} "
        "to it"
    )
