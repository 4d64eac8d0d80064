"""Run tasks on a Dask cluster (`--executor dask`); the run's machine keeps the ledger.

Workers never open the ledger (they may run where it is not). What crosses the network:

- the flow class (cloudpickle, by value when its module is the flow's own script) and its
  graph, scattered once per run: each worker receives them once;
- each input artifact's raw encoded bytes, read from the ledger here and scattered once per
  SHA under the key `ledgerflow-blob-<sha>`: a task depends on the keys of its inputs, so
  Dask moves each one to a worker once and every later task there reuses it;
- the task's output, as it prints (Dask events on a topic of this executor's);
- back: the `TaskResult` with every new blob encoded, hashed and compressed, which the
  runtime commits here, the only writer.

A worker that dies mid-task fails the attempt (the LocalCluster started here lets Dask
retry nothing itself: `distributed.scheduler.allowed-failures` is 0), so @retry decides.
docs/scale-out.md says how to run a scheduler and workers by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import uuid
from typing import Any

from ..exceptions import ExecutorError, LedgerflowError
from ..flowclasses import flow_class
from ..graph import flow_graph
from ..joins import resolve_join_inputs
from ..records import ArtifactRecord
from ..structs import replace
from ..taskblobs import encode_artifact
from ..taskspec import TaskResult, TaskSpec
from . import DEFAULT_MAX_WORKERS, Executor, OutputSink, RunningTask, TaskFuture

try:
    import distributed
except ImportError as e:  # pragma: no cover - the test extra installs it
    raise LedgerflowError("--executor dask needs Dask: pip install 'ledgerflow[dask]'") from e

SCHEDULER_ENV = "LEDGERFLOW_DASK_SCHEDULER"
_OUTPUT_FLUSH_BYTES = 8192  # a worker sends a task's output per line, or per this many bytes


class DaskExecutor(Executor):
    """Tasks as Dask tasks. Give it a `distributed.Client`, a scheduler address, or nothing
    (a LocalCluster of worker processes sized to this machine, closed with the run)."""

    def __init__(self, client: Any = None, max_workers: int = DEFAULT_MAX_WORKERS, *,
                 scheduler: str | None = None):  # fmt: skip
        super().__init__(max_workers)
        self._given = client
        self._scheduler = scheduler
        self.client: Any = client
        self._cluster: Any = None
        self._lock = threading.Lock()
        self._topic = f"ledgerflow-output-{uuid.uuid4().hex}"
        self._tasks: dict[str, _Task] = {}
        self._blobs: dict[str, Any] = {}  # sha -> the scattered Future of its raw bytes
        self._flows: dict[type, tuple[str, Any]] = {}  # flow class -> (token, scattered)
        self._ledgers: dict[str, Any] = {}
        self._ship_lock = threading.Lock()  # guards _blobs and _flows

    @classmethod
    def from_options(cls, max_workers: int, **options: Any) -> DaskExecutor:
        """--executor dask: on --dask-scheduler's scheduler (see dask_executor)."""
        return dask_executor(options.get("dask_scheduler"), max_workers)

    # -- the contract -----------------------------------------------------------------------

    def submit(self, spec: TaskSpec, output: OutputSink) -> TaskFuture:
        client = self._start()  # a scheduler that cannot be reached: one line, no run
        ledger = self._ledger(spec.ledger_path)
        spec = resolve_join_inputs(spec, ledger)  # workers cannot read the ledger
        key = f"ledgerflow-task-{spec.run_id}-{spec.task_id}-{spec.attempt}-{uuid.uuid4().hex[:8]}"
        task = _Task(key, spec, output)
        with self._lock:
            self._tasks[key] = task
        try:
            token, flow = self._ship_flow(spec)
            shas = {r.sha for refs in spec.inputs for r in refs.values()}
            shas |= {r.sha for r in spec.constants.values()}
            # Small values the runtime had at hand travel with the spec; the rest by SHA.
            inputs = self._ship_blobs(shas - set(spec.preloaded), ledger)
            # The class is registered on workers under a name of its own (its code's hash),
            # so two flows named alike, or two versions of one, never mix on a shared cluster.
            remote = replace(spec, flow_module=f"{spec.flow_module}@{token}")
            task.dask_future = client.submit(
                run_on_worker, remote, flow, inputs, self._topic, key, ledger.chunk_size,
                key=key, pure=False, retries=0,
            )  # fmt: skip
        except LedgerflowError:
            raise  # the ledger's own errors stop the run as with any executor
        except Exception as e:  # noqa: BLE001 - whatever Dask raised, the task fails with it
            self._complete(task, task.failed(self._failure(e)))
            return task.future
        task.dask_future.add_done_callback(lambda f: self._finish(task, f))
        return task.future

    def interrupt(self) -> None:
        """Cancel the tasks (Dask cannot stop a step already running on a worker: it runs
        to its end there, and its result is dropped)."""
        with self._lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            if task.dask_future is not None:
                with contextlib.suppress(Exception):
                    task.dask_future.cancel()
            self._complete(task, task.failed("the run was interrupted", "interrupted"))

    def shutdown(self, wait: bool = True) -> None:
        if self.client is None:
            return
        if not wait:
            self.interrupt()
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self._topic)
        self._topic_subscribed = False  # an executor passed in may serve another run
        for future in [*self._blobs.values(), *(f for _, f in self._flows.values())]:
            with contextlib.suppress(Exception):
                future.release()
        self._blobs.clear()
        self._flows.clear()
        if self._lost:
            # The client's reconnection attempts would log a traceback each on the way out;
            # the tasks' failures already said what happened.
            import logging

            for name in ("distributed.client", "distributed.comm", "distributed.core"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        if self._given is None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=5)
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close()
            self.client = self._cluster = None

    # -- setting up -----------------------------------------------------------------------

    def _start(self) -> Any:
        if self.client is not None and self._topic_subscribed:
            return self.client
        if self.client is None:
            address = self._scheduler or os.environ.get(SCHEDULER_ENV)
            try:
                if address:  # waits distributed.comm.timeouts.connect (30 s by default)
                    self.client = distributed.Client(address)
                else:
                    self._cluster = local_cluster()
                    self.client = distributed.Client(self._cluster)
            except (OSError, TimeoutError) as e:
                # ExecutorError: the runtime marks the run failed (it cannot start its tasks)
                # instead of leaving it 'running' in the ledger.
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {address}: {e}; start one "
                    "(`dask scheduler`) or check --dask-scheduler / " + SCHEDULER_ENV
                ) from None
        self.client.subscribe_topic(self._topic, self._on_output)
        self._topic_subscribed = True
        return self.client

    _topic_subscribed = False

    def _ledger(self, path: str) -> Any:
        from ..ledger import Ledger

        ledger = self._ledgers.get(path)
        if ledger is None:
            ledger = self._ledgers[path] = Ledger.open(path)
        return ledger

    def _ship_flow(self, spec: TaskSpec) -> tuple[str, Any]:
        cls = flow_class(spec)
        with self._ship_lock:
            shipped = self._flows.get(cls)
        if shipped is None or shipped[1].status != "finished":
            payload = pickle_flow(cls)
            token = hashlib.sha256(payload).hexdigest()[:16]
            [future] = self.client.scatter([payload], hash=False)
            shipped = (token, future)
            with self._ship_lock:
                self._flows[cls] = shipped
        return shipped

    def _ship_blobs(self, shas: set[str], ledger: Any) -> dict[str, Any]:
        """The scattered futures of these blobs; those not on the cluster yet (or lost with
        a worker) are read from the ledger and scattered, in one call."""
        with self._ship_lock:
            have = {sha: self._blobs.get(sha) for sha in shas}
        missing = sorted(sha for sha, f in have.items() if f is None or f.status != "finished")
        if missing:
            data = {}
            for sha in missing:
                encoding, raw = ledger.read_raw(sha)
                data[f"ledgerflow-blob-{sha}"] = (encoding, bytes(raw))
            scattered = self.client.scatter(data, hash=False)
            del data  # the workers hold them now
            with self._ship_lock:
                for sha in missing:
                    have[sha] = self._blobs[sha] = scattered[f"ledgerflow-blob-{sha}"]
        return have

    def _forget_lost(self) -> None:
        """After a worker died: stop using what was scattered to it alone (Dask cannot
        recompute scattered data), so the next task ships it again. The scheduler removed
        the worker before it failed the task, so its answer here already knows."""
        with self._ship_lock:
            shipped = {**{f"b{sha}": f for sha, f in self._blobs.items()},
                       **{f"f{id(cls)}": f for cls, (_, f) in self._flows.items()}}  # fmt: skip
        try:
            holders = self.client.who_has(list(shipped.values()))
        except Exception:  # noqa: BLE001 - the scheduler may be gone: keep everything
            holders = {}
        lost = {f.key for f in shipped.values() if not holders.get(f.key)}
        with self._ship_lock:
            self._blobs = {s: f for s, f in self._blobs.items() if f.key not in lost}
            self._flows = {c: v for c, v in self._flows.items() if v[1].key not in lost}

    # -- output and results (on Dask's threads) ------------------------------------------------

    def _on_output(self, event: tuple[float, tuple[str, str, str]]) -> None:
        key, stream, text = event[1]
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                return  # it ended already: its result carried this text
            task.received[stream] += len(text)
            task.output.write(stream, text)  # under the lock: in order with _finish's

    def _finish(self, task: _Task, future: Any) -> None:
        try:
            result, out, err = future.result()
        except BaseException as e:  # noqa: BLE001 - a dead worker, a lost scheduler, a cancelled task
            if type(e).__name__ == "KilledWorker":
                self._forget_lost()  # before the runtime can submit a retry
            self._complete(task, task.failed(self._failure(e)))
            return
        finally:
            with contextlib.suppress(Exception):
                future.release()  # the worker may drop the result now
        with self._lock:
            if self._tasks.pop(task.key, None) is None:
                return
            # The output events the result overtook (both travel through the scheduler):
            # what the task printed, less what arrived, in order.
            for stream, text in (("stdout", out), ("stderr", err)):
                if len(text) > task.received[stream]:
                    task.output.write(stream, text[task.received[stream] :])
        result.spec = task.spec
        if not task.future.done():
            task.future.set_result(result)

    def _complete(self, task: _Task, result: TaskResult) -> None:
        with self._lock:
            if self._tasks.pop(task.key, None) is None:
                return
        if not task.future.done():
            task.future.set_result(result)

    def _failure(self, error: BaseException) -> str:
        """Why a task failed outside its step (a dead worker, a lost scheduler)."""
        if self.client.status != "running" or \
                isinstance(error, OSError):  # distributed's CommClosedError  # fmt: skip
            self._lost = True
            return (f"lost the Dask scheduler at {self._address()}; `resume` continues the "
                    "run once a scheduler is back")  # fmt: skip
        return _why(error, self._address())

    def _address(self) -> str:
        with contextlib.suppress(Exception):
            return str(self.client.scheduler.address)
        return "?"

    _lost = False


class _Task(RunningTask):
    def __init__(self, key: str, spec: TaskSpec, output: OutputSink):
        super().__init__(spec, output)
        self.key = key
        self.dask_future: Any = None
        self.received = {"stdout": 0, "stderr": 0}


def _why(error: BaseException, scheduler: str) -> str:
    name = type(error).__name__
    if name == "KilledWorker":
        return ("the Dask worker running the task died (killed, out of memory, or crashed); "
                "its log is with the worker")  # fmt: skip
    if name in ("CancelledError", "FutureCancelledError"):
        return f"the task was cancelled by the Dask scheduler at {scheduler} (is it still up?)"
    return f"Dask could not run the task ({name}: {error})"


def local_cluster(n_workers: int | None = None, **kwargs: Any) -> Any:
    """A LocalCluster of single-threaded worker processes, one per core, that retries no
    task itself (a dead worker fails the attempt; @retry decides) and whose workers may not
    open a ledger."""
    import dask

    from ..ledger import FORBID_ENV

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        return distributed.LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            dashboard_address=None, env={FORBID_ENV: "1", **kwargs.pop("env", {})}, **kwargs,
        )  # fmt: skip


def pickle_flow(cls: type) -> bytes:
    """The flow class and its graph, cloudpickled. The flow's own script (run as __main__,
    or loaded by ledgerflow from its file) goes by value, as its code may exist only here;
    a class from an installed package goes by reference (install it on the workers)."""
    import cloudpickle

    graph = flow_graph(cls)  # parsed here: workers may not have the source file
    module = sys.modules.get(cls.__module__)
    by_value = module is not None and cls.__module__ != "__main__" and (
        cls.__module__ == "_ledgerflow_flow" or not _importable(cls.__module__))  # fmt: skip
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return bytes(cloudpickle.dumps((cls, graph)))
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _importable(module: str) -> bool:
    """True if the module comes from an installed package or the path (not a loose script)."""
    import importlib.util

    try:
        return module.split(".")[0] != "_ledgerflow_flow" and \
            importlib.util.find_spec(module) is not None  # fmt: skip
    except (ImportError, ValueError):
        return False


# -- on the worker --------------------------------------------------------------------------

_WORKER_FLOWS: dict[str, tuple[type, Any]] = {}
_worker_lock = threading.Lock()


def run_on_worker(spec: TaskSpec, flow: bytes, inputs: dict[str, tuple[str, bytes]],
                  topic: str, key: str, chunk_size: int) -> tuple[TaskResult, str, str]:  # fmt: skip
    """Run one task on a Dask worker: (its result, everything it printed to stdout and to
    stderr). Its output also goes to the driver as it comes."""
    from ..flowclasses import register_flow_class
    from ..liveness import hostname
    from ..task import run_task

    with _worker_lock:
        token = spec.flow_module.rsplit("@", 1)[-1]
        if token not in _WORKER_FLOWS:
            import cloudpickle

            cls, graph = cloudpickle.loads(flow)
            restore_filenames(cls, spec.flow_file)
            _WORKER_FLOWS[token] = (cls, graph)
            register_flow_class(cls, spec.flow_module, graph)
    sink = EventSink(topic, key)
    result = run_task(spec, sink, blobs=ShippedBlobs({**spec.preloaded, **inputs}, chunk_size))
    sink.close()
    result.host = hostname()
    return result, sink.text["stdout"], sink.text["stderr"]


def restore_filenames(cls: type, flow_file: str) -> None:
    """Code shipped by value comes with its file name replaced by '<dynamic-code>'
    (cloudpickle's choice): give the flow's steps, and the functions of the flow file they
    call, their file back, so tracebacks and failure locations name the user's lines."""
    import types

    def fix(code: types.CodeType) -> types.CodeType:
        if code.co_filename != "<dynamic-code>":
            return code
        consts = tuple(fix(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
        return code.replace(co_filename=flow_file, co_consts=consts)

    seen: set[int] = set()

    def visit(value: Any) -> None:
        func = getattr(value, "__func__", value)  # staticmethod/classmethod
        if not isinstance(func, types.FunctionType) or id(func) in seen:
            return
        seen.add(id(func))
        func.__code__ = fix(func.__code__)
        for name in func.__code__.co_names:
            visit(func.__globals__.get(name))
        visit(getattr(func, "__wrapped__", None))

    for klass in cls.__mro__:
        for value in vars(klass).values():
            visit(value)


class ShippedBlobs:
    """BlobAccess on a worker: inputs decoded from the raw bytes the driver scattered (a
    fresh object each load), and every new blob returned with the result, but for those the
    ledger has already (the task's own inputs)."""

    def __init__(self, raw: dict[str, tuple[str, bytes]], chunk_size: int):
        self.raw, self.chunk_size = raw, chunk_size

    def load(self, sha: str) -> Any:
        from .. import codec

        encoding, raw = self.raw[sha]
        return codec.decode(encoding, raw)

    def prefetch(self, shas: list[str]) -> None:
        """Nothing to read: every input's bytes came with the task."""

    def store(self, name: str, value: Any, result: TaskResult) -> ArtifactRecord:
        record, blob = encode_artifact(name, value, self.chunk_size)
        if blob.sha in self.raw:
            blob.discard()
        else:
            result.blobs.append(blob)
        return record


class EventSink:
    """A task's output on a worker: kept whole for the result, and sent to the driver line
    by line as Dask events (a worker's events reach the scheduler in order)."""

    def __init__(self, topic: str, key: str):
        self.topic, self.key = topic, key
        self.text = {"stdout": "", "stderr": ""}
        self._pending = {"stdout": "", "stderr": ""}
        self._lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        with self._lock:
            self.text[stream] += text
            pending = self._pending[stream] = self._pending[stream] + text
            if "\n" in text or len(pending) >= _OUTPUT_FLUSH_BYTES:
                self._send(stream)

    def close(self) -> None:
        with self._lock:
            for stream in self._pending:
                self._send(stream)

    def _send(self, stream: str) -> None:
        text, self._pending[stream] = self._pending[stream], ""
        if text:
            with contextlib.suppress(Exception):  # no worker (called outside Dask): keep it
                distributed.get_worker().log_event(self.topic, (self.key, stream, text))


def dask_executor(scheduler: str | None, max_workers: int) -> DaskExecutor:
    """The executor `--executor dask` makes: on the scheduler given (or in
    LEDGERFLOW_DASK_SCHEDULER), else on a LocalCluster started for the run."""
    return DaskExecutor(None, max_workers, scheduler=scheduler or os.environ.get(SCHEDULER_ENV))
