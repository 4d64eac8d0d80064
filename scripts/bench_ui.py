"""How fast `ledgerflow ui` answers on a big ledger: N runs (default 100,000) of two flows,
three tasks each, made by copying one real run's rows in SQL, then the median time of each
page over 5 requests.

    .venv/bin/python scripts/bench_ui.py --runs 100000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(db: Path, runs: int) -> str:
    import sqlite3

    flow = ROOT / "tests" / "flows" / "client" / "linear_flow.py"
    ids = db.parent / "id"
    subprocess.run(
        [sys.executable, str(flow), "--db", str(db), "--quiet", "run", "--run-id-file", str(ids)],
        check=True,
        capture_output=True,
    )
    seed = ids.read_text().strip()
    conn = sqlite3.connect(db)
    conn.execute("insert into flow(name, created_at) values ('OtherFlow', '2020-01-01')")
    cols = (
        "status, finished_at, params, user, host, pid, heartbeat_at, script_name, code, "
        "origin_run_id, python_version, ledgerflow_version, machine_id, graph_info"
    )
    tcols = (
        "step, task_id, attempt, status, started_at, finished_at, foreach_index, "
        "foreach_stack, exception_type, exception, traceback, origin_pathspec, transition"
    )
    seed_pk = conn.execute("select id from run where run_id = ?", (seed,)).fetchone()[0]
    for i in range(runs):
        flow_id = 1 + i % 2
        stamp = f"2025-{1 + i // 250000 % 12:02d}-01T00:00:00.{i:06d}Z"
        pk = conn.execute(
            f"insert into run(flow_id, run_id, created_at, {cols}) select ?, ?, ?, {cols} "
            "from run where id = ?",
            (flow_id, f"1{i:09d}", stamp, seed_pk),
        ).lastrowid
        if i % 10 == 0:
            conn.execute("update run set status = 'failed' where id = ?", (pk,))
        if i % 1000 == 0:
            conn.execute("insert into tag(run_id, tag, system) values (?, 'rare', 0)", (pk,))
        conn.execute(
            f"insert into task(run_id, {tcols}) select ?, {tcols} from task where run_id = ?",
            (pk, seed_pk),
        )
    conn.commit()
    conn.close()
    return seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    args = parser.parse_args()
    from ledgerflow.ledger import Ledger
    from ledgerflow.ui import make_server

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "big.db"
        t0 = time.perf_counter()
        seed = build(db, args.runs)
        Ledger.open(db)  # migrations (the run(created_at) index) as a user's first open would
        print(
            f"built {args.runs} runs in {time.perf_counter() - t0:.1f} s "
            f"({db.stat().st_size / 1e6:.0f} MB)"
        )
        server, url = make_server(db, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        middle = f"2025-01-01T00:00:00.{args.runs // 2:06d}Z|{args.runs // 2}"
        pages = {
            "runs, first page": "",
            "runs, page at the middle": f"?after={middle}",
            "runs of one flow": "?flow=OtherFlow",
            "failed runs": "?status=failed",
            "runs tagged 'rare' (1 in 1000)": "?tag=rare",
            "a run page": f"run/LinearFlow/{seed}",
            "search": "search?q=numbers",
        }
        for name, path in pages.items():
            times = []
            for _ in range(5):
                start = time.perf_counter()
                with urllib.request.urlopen(url + path) as r:
                    r.read()
                times.append(time.perf_counter() - start)
            print(f"{name:34s} {statistics.median(times) * 1000:8.1f} ms")
        server.shutdown()


if __name__ == "__main__":
    main()
