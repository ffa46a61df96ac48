"""Memory of the Parquet conversion: a journal of N rows turned into a Parquet file.

``journal_to_parquet`` converts a finished run's JSON Lines journal a chunk at a time,
so its memory should not depend on how many rows the journal holds. For each count a
journal of realistic rows (five predictions, ~60-character paths, ``bytes`` and
``modified``) is written, then converted in a fresh interpreter twice: once under
tracemalloc (Python's own allocations, peak) and once without it (resident memory:
the high-water mark above the baseline after pyarrow is imported, Arrow's buffers
included). Fresh interpreters, so nothing from one count is counted in the next; each
is measured cold (the process's first conversion) and warm (after a one-row one).

    python benchmarks/parquet_memory.py [--counts 10000 40000 160000 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from _common import WORK

_CHILD = r"""
import sys, tracemalloc
import pyarrow.parquet
from effnet_app.core.runtime.results_parquet import journal_to_parquet

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024

mode, warm, journal, target = sys.argv[1:5]
if warm == "warm":  # a first, one-row conversion: the imports pyarrow makes on first use
    with open(target + ".warm", "w") as f:
        f.write('{"path": "a", "predictions": [{"label": "b", "probability": 1.0}]}\n')
    journal_to_parquet(target + ".warm", target, 5, False)
base = status("VmRSS:")
if mode == "trace":
    tracemalloc.start()
journal_to_parquet(journal, target, 5, False)
if mode == "trace":
    print(tracemalloc.get_traced_memory()[1] / 1e6)
else:
    print(status("VmHWM:") - base)
"""


def make_journal(path: Path, count: int) -> None:
    """``count`` journal rows like a real run's: every 50th a problem, labels repeat."""
    if path.exists():
        return
    rng = random.Random(count)
    labels = [f"label {n} of the thousand" for n in range(1000)]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(count):
            row = {"path": f"/data/photos/2024/holiday-{i // 1000:04d}/IMG_{i:08d}_edit.jpg"}
            if i % 50 == 49:
                row.update(predictions=[], problem="cannot identify image file")
            else:
                probs = sorted((rng.random() for _ in range(5)), reverse=True)
                ranked = rng.sample(labels, 5)
                row["predictions"] = [
                    {"label": label, "probability": round(p, 6)}
                    for label, p in zip(ranked, probs, strict=True)
                ]
                row["problem"] = None
            row["bytes"], row["modified"] = rng.randrange(10**7), 1.7e9 + rng.random() * 1e7
            f.write(json.dumps(row) + "\n")
    tmp.replace(path)


def measure(mode: str, warm: str, journal: Path) -> float:
    target = journal.with_suffix(".parquet")
    run = [sys.executable, "-c", _CHILD, mode, warm, str(journal), str(target)]
    done = subprocess.run(run, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    args = parser.parse_args()
    folder = WORK / "parquet_memory"
    folder.mkdir(parents=True, exist_ok=True)
    print("MB; cold: the process's first conversion (pyarrow's lazy imports, pandas among")
    print("them, counted); warm: after a one-row conversion, as for every later one")
    print(
        f"{'rows':>9}  {'traced cold':>11}  {'traced warm':>11}  {'RSS cold':>8}  {'RSS warm':>8}"
    )
    for count in args.counts:
        journal = folder / f"journal_{count}.jsonl"
        make_journal(journal, count)
        figures = [measure(m, w, journal) for m in ("trace", "rss") for w in ("cold", "warm")]
        print(
            f"{count:>9}"
            + "".join(f"  {x:>{11 if i < 2 else 8}.1f}" for i, x in enumerate(figures))
        )


if __name__ == "__main__":
    main()
