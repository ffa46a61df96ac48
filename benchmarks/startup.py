"""Time until the main window is shown, beside the time `import torch` takes alone.

Both are measured in this one run, as fresh processes, alternating, several times; the
medians are printed with their ratio. The window must come first: torch is loaded later.

    python benchmarks/startup.py [--runs 5]
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


def time_window(home: str) -> tuple[float, bool]:
    env = {
        **os.environ,
        "EFFNET_APP_HOME": home,
        "EFFNET_APP_STARTUP_PROBE": "1",
        "EFFNET_APP_QUIT_AFTER_SHOW": "1",
    }
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "effnet_app"], stdout=subprocess.PIPE, text=True, env=env
    )
    for line in proc.stdout:
        if line.startswith("{"):
            shown = time.perf_counter() - start
            event = json.loads(line)
            proc.wait(timeout=60)
            return shown, event["torch_loaded"]
    raise SystemExit("the app exited without showing its window")


def time_import_torch() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def time_bare_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    windows, torches, bares, torch_seen = [], [], [], []
    with tempfile.TemporaryDirectory() as home:
        time_window(home)  # warm the OS file cache for both sides alike
        time_import_torch()
        for _ in range(args.runs):
            shown, loaded = time_window(home)
            windows.append(shown)
            torch_seen.append(loaded)
            torches.append(time_import_torch())
            bares.append(time_bare_python())
    w, t, b = (statistics.median(x) for x in (windows, torches, bares))
    print(
        f"runs: {args.runs} (medians, fresh processes, platform "
        f"{'xcb' if os.environ.get('DISPLAY') else 'offscreen'})"
    )
    print(f"python start alone          : {b:6.3f} s")
    print(f"window shown (from spawn)   : {w:6.3f} s   torch loaded then: {any(torch_seen)}")
    print(f"`import torch` alone        : {t:6.3f} s")
    print(
        f"window / import torch       : {w / t:6.2f}  ({'window first' if w < t else 'TORCH FIRST'})"
    )


if __name__ == "__main__":
    main()
