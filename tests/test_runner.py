"""Runner and ExecutingRun as Metaflow 2.12+ has them: run, resume, async_run with wait()
and stream_log(), status/returncode/stdout/stderr, context managers, and the runner
attribute file the flow command writes."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from ledgerflow import ExecutingRun, ExternalCommandFailed, Runner

from .helpers import FLOWS, query, run_flow

FLOW = FLOWS / "compat" / "runner_flow.py"


def test_run_passes_parameters_and_options_and_returns_the_run(db_path: Path) -> None:
    with Runner(str(FLOW), show_output=False, pylint=False).run(
        alpha=3, learning_rate=0.1, config={"k": 2}, tags=["a", "b"], max_workers=2
    ) as running:
        assert isinstance(running, ExecutingRun)
        assert running.status == "successful" and running.returncode == 0
        run = running.run
        assert run.successful and run["start"].task.data.result == (3, 0.1, {"k": 2})
        assert {"a", "b"} <= run.user_tags
        assert "alpha is 3" in running.stdout
    # the run is in the ledger the command wrote (found from the working directory)
    assert query(db_path, "select run_id from runs") == [(run.id,)]


def test_a_failed_run_is_returned_with_status_failed(db_path: Path) -> None:
    runner = Runner(str(FLOW), show_output=False, env={"RUNNER_FLOW_FAIL": "1"})
    running = runner.run(verbose=True)
    assert running.status == "failed" and running.returncode == 1
    assert running.run.successful is False
    assert "asked to fail" in running.stderr + running.stdout
    runner.cleanup()


def test_a_usage_error_raises_called_process_error_with_the_reason(db_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        Runner(str(FLOW), show_output=False).run(alpha="x")
    assert isinstance(info.value, ExternalCommandFailed)
    assert info.value.returncode == 2 and "'x' is not a valid integer" in str(info.value)


def test_resume_reruns_from_a_failed_run(db_path: Path) -> None:
    with Runner(str(FLOW), show_output=False, env={"RUNNER_FLOW_FAIL": "1"}) as runner:
        failed = runner.run().run
    with Runner(str(FLOW), show_output=False) as runner:
        resumed = runner.resume(origin_run_id=failed.id)
        assert resumed.status == "successful"
        assert resumed.run.origin_run_id == failed.id and resumed.run.id != failed.id
        assert resumed.run.data.done is True


def test_async_run_returns_at_once_then_waits_and_streams(db_path: Path) -> None:
    async def main() -> tuple[str, list[str], ExecutingRun, list[str]]:
        async with Runner(str(FLOW)) as runner:
            running = await runner.async_run(alpha=7)
            first_status = running.status
            lines = [line async for _, line in running.stream_log("stdout")]
            await running.wait(stream="stdout")
            # resuming a stream from a position it gave skips what was read
            positions = [p async for p, _ in running.stream_log("stdout")]
            rest = [line async for _, line in running.stream_log("stdout", positions[0])]
            return first_status, lines, running, rest

    first_status, lines, running, rest = asyncio.run(main())
    assert first_status in ("running", "successful")
    assert running.status == "successful"
    text = "\n".join(lines)
    assert "alpha is 7" in text and "second line" in text and lines[-1].endswith("Done!")
    assert len(rest) == len(lines) - 1
    assert running.run.data.result[0] == 7


def test_wait_with_a_timeout_kills_the_run(tmp_path: Path, db_path: Path) -> None:
    slow = tmp_path / "slow_flow.py"
    slow.write_text(
        "import time\nfrom ledgerflow import FlowSpec, step\n"
        "class SlowFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        time.sleep(60)\n        self.next(self.end)\n"
        "    @step\n    def end(self):\n        pass\n"
        "if __name__ == '__main__':\n    SlowFlow()\n"
    )

    async def main() -> ExecutingRun:
        runner = Runner(str(slow), show_output=False)
        running = await runner.async_run()
        await running.wait(timeout=0.5)
        return running

    running = asyncio.run(main())
    assert running.status == "timeout" and running.returncode is not None


def test_runner_attribute_file_says_where_the_run_is(tmp_path: Path, db_path: Path) -> None:
    attrs = tmp_path / "attrs.json"
    run_flow(FLOW, "--runner-attribute-file", str(attrs), db=db_path)
    content = json.loads(attrs.read_text())
    assert content["flow_name"] == "RunnerFlow"
    assert content["metadata"] == f"ledger@{db_path}"
    assert query(db_path, "select run_id from runs") == [(content["run_id"],)]


def test_runner_keywords_become_the_command_line() -> None:
    from ledgerflow.runner import _command_args, _top_level_args

    assert _top_level_args({"pylint": False, "quiet": True, "metadata": "local",
                            "db": "x.db"}) == [
        "--no-pylint", "--quiet", "--metadata", "local", "--db", "x.db"]  # fmt: skip
    args = _command_args(str(FLOW), "run", {"learning_rate": 0.2, "tags": ["a", "b"],
                                            "config": {"k": 3}, "max_workers": 4})  # fmt: skip
    assert args == ["--learning-rate", "0.2", "--tag", "a", "--tag", "b",
                    "--config", '{"k": 3}', "--max-workers", "4"]  # fmt: skip
    assert _command_args(str(FLOW), "resume", {"step_to_rerun": "end",
                                               "origin_run_id": "12"}) == [
        "--origin-run-id", "12", "end"]  # fmt: skip


def test_a_missing_flow_file_is_one_clear_error(tmp_path: Path) -> None:
    from ledgerflow.exceptions import LedgerflowError

    with pytest.raises(LedgerflowError, match="no flow file at"):
        Runner(str(tmp_path / "nope.py"))
