"""Every benchmark, one after the other, as subprocesses; then one table of their figures.

Each script runs with the virtual environment's python, its whole output kept in
``benchmarks/_work/run_all/NAME.log`` (``NAME.quick.log`` with ``--quick``). Its figures
come from its ``RESULT`` lines (``_report.result``), or, for scripts that print none,
from its summary lines. The table (benchmark, figure, value, goal, met?) is printed as
Markdown with the date and the CPU, ready for the README. The full run takes a long while
(tens of minutes on two cores); ``--quick`` runs each script on less work and fewer
repetitions, ``--only NAME`` runs some of them.

    python benchmarks/run_all.py [--quick] [--only backends --only startup] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import WORK
from _report import parse_results

HERE = Path(__file__).resolve().parent

# name: (script, full arguments, --quick arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "classify_folder": ("classify_folder.py", [], ["--count", "60", "--naive-count", "12", "--reps", "2"]),
    "memory": ("memory.py", [], ["--count", "1500", "--every", "500"]),
    "memory_huge": ("memory.py", ["--huge", "8"], ["--huge", "2"]),
    "startup": ("startup.py", [], ["--runs", "2"]),
    "gui_responsiveness": ("gui_responsiveness.py", [], ["--count", "100"]),
    "wizard_responsiveness": ("wizard_responsiveness.py", [], ["--per-class", "12", "--epochs", "1"]),
    "backends": ("backends.py", [], ["--quick"]),
    "train_head": ("train_head.py", [], ["--per-class", "12"]),
    "train_finetune": ("train_finetune.py", [], ["--images", "40", "--epochs", "2"]),
}  # fmt: skip

_STALL = (
    r"event-loop stall, longest\s*:\s*([\d.]+) ms \(goal <= (\d+) ms\)",
    lambda m: (f"{m[1]}ms", f"<={m[2]}ms", float(m[1]) <= float(m[2])),
)
# For the scripts without RESULT lines: (figure, regex, match -> (value, goal, met)).
SUMMARIES = {
    "memory": [("RSS growth", r"growth from image \d+ to \d+: ([+-][\d.]+) MB \(limit (\d+) MB\)",
                lambda m: (f"{m[1]}MB", f"<={m[2]}MB", float(m[1]) <= float(m[2])))],
    "memory_huge": [("peak RSS above baseline", r"peak RSS ([+-][\d.]+) MB above baseline",
                     lambda m: (f"{m[1]}MB", "<1500MB", float(m[1]) < 1500))],
    "gui_responsiveness": [("longest stall", *_STALL),
                           ("throughput incl. load", r"throughput \(incl\. model load\)\s*:\s*([\d.]+)",
                            lambda m: (f"{m[1]}img/s", "-", None))],
    "wizard_responsiveness": [("longest stall", *_STALL)],
    "train_head": [("training / inference", r"training / inference: ([\d.]+)x \(goal <= ([\d.]+)x\)",
                    lambda m: (f"{m[1]}x", f"<={m[2]}x", float(m[1]) <= float(m[2])))],
    "train_finetune": [("speed-up from epoch 2", r"at least ([\d.]+)x faster \(goal >= ([\d.]+)x\)",
                        lambda m: (f"{m[1]}x", f">={m[2]}x", float(m[1]) >= float(m[2])))],
}  # fmt: skip


def venv_python() -> str:
    found = HERE.parent / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return str(found) if found.exists() else sys.executable


def run_one(name: str, quick: bool, timeout: float) -> tuple[int, str, float]:
    """Run one benchmark; its exit status, its whole output and the seconds it took."""
    script, full, short = BENCHMARKS[name]
    log = WORK / "run_all" / f"{name}{'.quick' if quick else ''}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [venv_python(), str(HERE / script), *(short if quick else full)]
    print(f"running {name}: {' '.join(cmd[1:])} (log: {log})", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        code, text = done.returncode, done.stdout
    except subprocess.TimeoutExpired as exc:
        code, text = -1, (exc.stdout or b"").decode(errors="replace") + "\n[timed out]"
    seconds = time.perf_counter() - start
    log.write_text(text, encoding="utf-8")
    return code, text, seconds


def figures(name: str, code: int, text: str) -> list[tuple[str, str, str, str]]:
    """(figure, value, goal, met) rows of one benchmark's output."""
    rows = []
    for found in parse_results(text):
        extra = found.get("figure", "").replace("_", " ").replace(":", ": ")
        figure = found.get("name", "?").split(".", 1)[-1] + (f" ({extra})" if extra else "")
        goal = found.get("goal", "-").replace("_", " ")
        rows.append((figure, found.get("value", "?"), goal, found.get("met", "?")))
    if not rows:
        for figure, pattern, read in SUMMARIES.get(name, []):
            match = re.search(pattern, text)
            if match:
                value, goal, met = read(match)
                rows.append((figure, value, goal, "-" if met is None else ("yes" if met else "no")))
    if code != 0:
        last = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "")
        rows.append(("run failed", f"exit {code}", "exit 0", "no: " + last[:120]))
    return rows or [("no figure found", "-", "-", "?")]


def table(results: dict[str, list], quick: bool) -> str:
    from effnet_app.core.runtime import cpu

    lines = [
        f"Measured {datetime.date.today().isoformat()} on {cpu.cpu_name()} "
        f"({cpu.physical_cores()} cores, {', '.join(cpu.isa_flags()) or 'no listed ISA flags'})"
        f"{', --quick' if quick else ''}:",
        "",
        "| benchmark | figure | measured | goal | met? |",
        "|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        for figure, value, goal, met in rows:
            lines.append(f"| `{name}` | {figure} | {value} | {goal} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less work, fewer repetitions")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    args = parser.parse_args()
    results: dict[str, list] = {}
    for name in args.only or BENCHMARKS:
        code, text, seconds = run_one(name, args.quick, args.timeout)
        results[name] = figures(name, code, text)
        print(
            f"  {name}: {seconds:.0f} s, " + "; ".join(f"{f} {v}" for f, v, _, _ in results[name])
        )
    print()
    print(table(results, args.quick))
    # A goal missed is a figure to read; only a benchmark that could not run fails the run.
    failed = any(f == "run failed" for rows in results.values() for f, *_ in rows)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
