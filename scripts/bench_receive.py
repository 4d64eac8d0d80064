"""What checking a received file costs `import`: CPU seconds of the whole import of a
ledger of N runs (scripts/build_big_ledger.py) into a new one, and of its row checks alone
(`row_checks.row_problems`: storage types, UTF-8, timestamps), medians of --repeat.

    .venv/bin/python scripts/bench_receive.py --runs 2000
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from ledgerflow.ledger import Ledger
    from ledgerflow.row_checks import row_problems
    from ledgerflow.sharing import import_ledger

    folder = Path(tempfile.mkdtemp(prefix="bench-receive-"))
    source = folder / "source.db"
    subprocess.run([sys.executable, str(Path(__file__).with_name("build_big_ledger.py")),
                    str(source), "--runs", str(args.runs)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    checks, imports = [], []
    for i in range(args.repeat):
        ledger = Ledger(source, readonly=True)
        started = cpu()
        assert row_problems(ledger.conn) == []
        checks.append(cpu() - started)
        ledger.close()
        target = folder / f"target{i}.db"
        started = cpu()
        import_ledger(source, ledger=Ledger(target))
        imports.append(cpu() - started)
    check, whole = statistics.median(checks), statistics.median(imports)
    size = source.stat().st_size / 1e6
    print(
        f"{args.runs} runs, {size:.1f} MB: row checks {check:.3f} CPU-s, whole import "
        f"{whole:.3f} CPU-s (checks {100 * check / whole:.1f}% of it), medians of {args.repeat}"
    )
    trust_costs(source, folder)


def trust_costs(source: Path, folder: Path) -> None:
    """`ledgerflow trust FILE` (every run's fingerprint) and the check before a pickle loads
    from a trusted received file: first for a run, then again (cached per file state)."""
    import os

    os.environ["LEDGERFLOW_TRUST_STORE"] = str(folder / "trust.json")
    from ledgerflow import trust_store
    from ledgerflow.ledger import Ledger

    ledger = Ledger(source, readonly=True)
    started = cpu()
    count = trust_store.remember_file(ledger)
    remember = cpu() - started
    pks = [r[0] for r in ledger.execute("select id from run limit 200")]
    per_run = []
    for _ in range(2):
        started = cpu()
        assert all(trust_store.run_trusted(ledger, pk) for pk in pks)
        per_run.append((cpu() - started) / len(pks) * 1e3)
    print(
        f"trust FILE of {count} runs {remember:.3f} CPU-s; check before a pickle loads "
        f"{per_run[0]:.3f} ms a run, {per_run[1]:.3f} ms cached"
    )


if __name__ == "__main__":
    main()
