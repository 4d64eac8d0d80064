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


if __name__ == "__main__":
    main()
