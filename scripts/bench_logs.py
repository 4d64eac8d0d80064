"""Logs at scale (issue 26): a task printing 600,000 lines (~28 MB of
"epoch E step S loss L word"), run with the real CLI, then read back and searched.

    .venv/bin/python scripts/bench_logs.py                    # this checkout
    .venv/bin/python scripts/bench_logs.py --base /tmp/base   # and another, same run

`--base DIR` also measures a checkout of ledgerflow in DIR (e.g. `git archive 0e59806 |
tar -x -C /tmp/base`), alternating the two `--repeat` times, so before/after figures come
from the same machine at the same time. Reported per code (medians):
- the run: wall and CPU seconds (of every process of it), and the largest process's max
  RSS (getrusage(RUSAGE_CHILDREN).ru_maxrss of a wrapper around the command);
- ledger growth: file (+ WAL) bytes after the run minus before it, over the printed bytes;
- `ledgerflow logs RUN/start --stdout`: lines read back (must be all), seconds, max RSS;
- `ledgerflow search word --timeout 5`: seconds and exit code (-9: killed after
  --search-limit seconds, still running).
Ledgers go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOW = """
import sys
from ledgerflow import FlowSpec, Parameter, step


class BigLogFlow(FlowSpec):
    lines = Parameter("lines", default=600000)

    @step
    def start(self):
        write = sys.stdout.write
        for i in range(int(self.lines)):
            write(f"epoch {i // 20000} step {i} loss {1.0 / (i + 1):.6f} word\\n")
        self.next(self.end)

    @step
    def end(self):
        print("done")


if __name__ == "__main__":
    BigLogFlow()
"""


def measured(cmd: list[str], env: dict[str, str], limit: float = 3600) -> dict[str, float]:
    """Run `cmd` in a wrapper process that reports its children's rusage; a command still
    running after `limit` seconds is killed (rc -9, wall = limit)."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "try:\n"
        "    out, _ = p.communicate(timeout=float(sys.argv[1]))\n"
        "except subprocess.TimeoutExpired:\n"
        "    p.kill()\n"
        "    out, _ = p.communicate()\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall': time.monotonic() - t, 'cpu': u.ru_utime + u.ru_stime,\n"
        "  'maxrss_mb': u.ru_maxrss / 1024, 'rc': p.returncode,\n"
        "  'lines': out.count(b'\\n'), 'out_bytes': len(out)}))\n"
    )
    # cwd: `python -m ledgerflow` imports the package from the current directory first.
    out = subprocess.run([sys.executable, "-c", wrapper, str(limit), *cmd], env=env, check=True,
                         capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout  # fmt: skip
    return json.loads(out)


def size(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())


def one_round(code: Path, lines: int, work: Path, search_limit: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    flow = work / "biglog.py"
    flow.write_text(FLOW)
    db = work / f"{code.name}-{time.monotonic_ns()}.db"
    run = [sys.executable, str(flow), "--db", str(db)]
    measured([*run, "run", "--lines", "10"], env)  # the ledger exists, with a small run
    before = size(db)
    printed = sum(len(f"epoch {i // 20000} step {i} loss {1.0 / (i + 1):.6f} word\n")
                  for i in range(lines))  # fmt: skip
    r = measured([*run, "run", "--lines", str(lines)], env)
    assert r["rc"] == 0, r
    grown = size(db) - before
    cli = [sys.executable, "-m", "ledgerflow", "--db", str(db)]
    listed = subprocess.run([*cli, "runs", "--json"], env=env, capture_output=True, text=True,
                            cwd=work)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    latest = json.loads(listed.stdout)[0]["pathspec"]
    logs = measured([*cli, "logs", f"{latest}/start", "--stdout"], env)
    search = measured([*cli, "search", "word", "--timeout", "5"], env, limit=search_limit)
    db.unlink()
    return {
        "run_wall_s": r["wall"], "run_cpu_s": r["cpu"], "run_maxrss_mb": r["maxrss_mb"],
        "printed_mb": printed / 1e6, "ledger_growth_mb": grown / 1e6,
        "growth_ratio": grown / printed, "logs_lines": logs["lines"], "logs_s": logs["wall"],
        "logs_maxrss_mb": logs["maxrss_mb"], "search_s": search["wall"],
        "search_rc": search["rc"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=600_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base", type=Path, help="another ledgerflow checkout to compare")
    parser.add_argument(
        "--search-limit",
        type=float,
        default=120,
        help="kill a search still running after this many seconds (rc -9)",
    )
    args = parser.parse_args()
    codes = {"this": ROOT}
    if args.base:
        codes = {"base": args.base.resolve(), "this": ROOT}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, code in codes.items():
                r = one_round(code, args.lines, Path(tmp), args.search_limit)
                results[name].append(r)
                print(f"round {i + 1} {name}: " + ", ".join(
                    f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in r.items()), flush=True)  # fmt: skip
    print(f"\nmedians of {args.repeat} rounds, {args.lines} lines:")
    for name, rounds in results.items():
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        print(f"  {name}: " + ", ".join(f"{k}={v:.3g}" for k, v in med.items()))


if __name__ == "__main__":
    main()
