"""How fast `ledgerflow ui` answers for a wide run: a 10-task run against a 10,000-task run
(a foreach copied in SQL from a real 200-task run), each page requested 7 times, median
wall time and the process's CPU time per request (and the first request's CPU time: pages
keep a finished run's step summaries, so later views cost less). With --before DIR (a checkout of another
ledgerflow's package root) the same ledger is measured with that code too, in the same run,
so the figures compare like for like.

    .venv/bin/python scripts/bench_ui_wide.py --tasks 10000 --before /tmp/ui_base
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "tests" / "flows" / "ui" / "wide_flow.py"


def build(db: Path, tasks: int) -> dict[str, str]:
    ids = {}
    for name, width in (("narrow", 7), ("wide", 200)):
        out = db.parent / name
        subprocess.run([sys.executable, str(FLOW), "--db", str(db), "--quiet", "run",
                        "--max-num-splits", "1000", "--width", str(width), "--run-id-file",
                        str(out)], check=True, capture_output=True)  # fmt: skip
        ids[name] = out.read_text().strip()
    conn = sqlite3.connect(db)
    run_pk = conn.execute("select id from run where run_id = ?", (ids["wide"],)).fetchone()[0]
    cols = ("run_id, step, attempt, status, started_at, finished_at, foreach_index, "
            "foreach_stack, exception_type, exception, traceback, origin_pathspec, transition")  # fmt: skip
    copies = max(0, -(-(tasks - 203) // 200))
    for c in range(copies):  # more fan tasks: task ids continue past the real ones
        conn.execute(f"insert into task(task_id, {cols}) select cast(task_id as integer) + ?, "
                     f"{cols} from task where run_id = ? and step = 'fan' and "
                     "cast(task_id as integer) < 202", ((c + 1) * 1000, run_pk))  # fmt: skip
    conn.commit()
    n = conn.execute("select count(*) from task where run_id = ?", (run_pk,)).fetchone()[0]
    conn.close()
    ids["wide_tasks"] = str(n)
    return ids


def measure(db: str, ids: dict[str, str], code: str | None) -> dict[str, list[float]]:
    if code:
        sys.path.insert(0, code)
    import resource
    import threading
    import urllib.request

    from ledgerflow.ui import make_server

    server, url = make_server(db, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pages = {}
    for kind in ("narrow", "wide"):
        rid = ids[kind]
        pages[f"{kind}: run page"] = f"run/WideFlow/{rid}"
        pages[f"{kind}: step page (fan)"] = f"step/WideFlow/{rid}/fan"
        pages[f"{kind}: task page"] = f"task/WideFlow/{rid}/fan/3"
    pages["diff narrow vs wide"] = f"diff?a=WideFlow/{ids['narrow']}&b=WideFlow/{ids['wide']}"
    out: dict[str, list[float]] = {}
    for name, path in pages.items():
        wall, cpu, size = [], [], 0
        for _ in range(7):
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            with urllib.request.urlopen(url + path, timeout=600) as r:
                size = len(r.read())
            wall.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        out[name] = [statistics.median(wall) * 1000, statistics.median(cpu) * 1000, size,
                     cpu[0] * 1000]  # fmt: skip
    server.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--before", help="another ledgerflow package root to measure too")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # db ids-json code
    args = parser.parse_args()
    if args.measure:
        db, ids, code = args.measure
        print(json.dumps(measure(db, json.loads(ids), code if code != "-" else None)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "wide.db"
        ids = build(db, args.tasks)
        print(f"narrow run: 10 tasks; wide run: {ids['wide_tasks']} tasks")
        results = {}
        for label, code in (("before", args.before), ("after", str(ROOT))):
            if code is None:
                continue
            proc = subprocess.run([sys.executable, __file__, "--measure", str(db),
                                   json.dumps(ids), code], capture_output=True, text=True,
                                  check=True, cwd=tmp)  # fmt: skip
            results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
        labels = list(results)
        head = "".join(f"{lbl + ': ms wall / cpu / first cpu / KB':>44s}" for lbl in labels)
        print(f"{'page':28s}{head}")
        for page in results[labels[-1]]:
            cells = "".join(f"{w:12.1f} /{c:8.1f} /{f:8.1f} /{s / 1024:8.0f}"
                            for w, c, s, f in (results[lbl][page] for lbl in labels))  # fmt: skip
            print(f"{page:28s}{cells}")


if __name__ == "__main__":
    main()
