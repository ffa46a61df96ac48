"""Time until the main window is shown, beside the time `import torch` takes alone; and
`effnet-app classify one.png` from spawn to exit, on PyTorch and on the torch-free path.

All are measured in this one run, as fresh processes, alternating, several times; the
medians are printed with their ratios. The window must come first: torch is loaded later.

The command-line row classifies one PNG made from a real photo with the default model
(Lite0): ``--backend torch`` against the default engine (auto), both sharing one fresh
``EFFNET_APP_HOME`` whose export and engine choice were made by one warm-up run first, as
after a user's first classification. Peak RSS is the child's own maximum resident set
(``wait4``). Goals for the torch-free path: <= 0.6 s and <= 250 MB. The app's modules are
compiled to bytecode first, as an installed app has them (``compile_bytecode``).

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
from pathlib import Path

from _common import WORK, real_photo
from _report import result

CLI_GOAL_S = 0.6
CLI_GOAL_MB = 250.0


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


def time_bare_python(code: str = "pass") -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("effnet-app")
    return [str(script)] if script.exists() else [sys.executable, "-m", "effnet_app.cli"]


def time_cli(home: str, image: Path, backend: str) -> tuple[float, float, str]:
    """Seconds from spawn to exit, the child's peak RSS in MB, and its summary line."""
    env = {**os.environ, "EFFNET_APP_HOME": home}
    env.pop("EFFNET_APP_ENGINE", None)
    cmd = [*cli_command(), "classify", str(image), "--backend", backend]
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes there, KiB here
    lines = [line for line in text.splitlines() if " classified, " in line]  # engine used
    summary = lines[-1] if lines else ""
    return seconds, usage.ru_maxrss * scale / 1e6, summary


def cli_rows(runs: int) -> None:
    image = WORK / "one.png"
    if not image.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        real_photo("coffee").save(image)
    timings: dict[str, list[tuple[float, float]]] = {"torch": [], "auto": []}
    floors: list[float] = []
    summaries: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as home:
        first = time_cli(home, image, "auto")  # exports, verifies, measures: remembered
        print(f"first run on auto (optimising included): {first[0]:6.2f} s, {first[1]:5.0f} MB")
        time_cli(home, image, "torch")  # warm the OS file cache for both sides alike
        for _ in range(runs):
            for backend in timings:
                seconds, peak, summaries[backend] = time_cli(home, image, backend)
                timings[backend].append((seconds, peak))
            floors.append(time_bare_python("import numpy, PIL.Image, onnxruntime"))
    medians = {
        b: (statistics.median(t for t, _ in v), statistics.median(m for _, m in v))
        for b, v in timings.items()
    }
    print("`effnet-app classify one.png` (Lite0, medians, fresh processes):")
    for backend, (seconds, peak) in medians.items():
        print(
            f"  --backend {backend:5s}: {seconds:6.3f} s, peak RSS {peak:5.0f} MB   [{summaries[backend]}]"
        )
    print(f"  `import numpy, PIL.Image, onnxruntime` alone: {statistics.median(floors):6.3f} s")
    (t_s, t_mb), (a_s, a_mb) = medians["torch"], medians["auto"]
    print(f"  auto / torch: {a_s / t_s:.2f}x the time, {a_mb / t_mb:.2f}x the memory")
    print(
        f"  goals for the torch-free path: <= {CLI_GOAL_S} s ({'met' if a_s <= CLI_GOAL_S else 'NOT met'}), "
        f"<= {CLI_GOAL_MB:.0f} MB ({'met' if a_mb <= CLI_GOAL_MB else 'NOT met'})"
    )
    result(
        "startup.cli_one_image_time",
        f"{a_s:.2f}s",
        f"<={CLI_GOAL_S}s",
        a_s <= CLI_GOAL_S,
        f"torch:{t_s:.2f}s",
    )
    result(
        "startup.cli_one_image_rss",
        f"{a_mb:.0f}MB",
        f"<={CLI_GOAL_MB:.0f}MB",
        a_mb <= CLI_GOAL_MB,
        f"torch:{t_mb:.0f}MB",
    )


def compile_bytecode() -> None:
    """Compile the app's modules to bytecode first, as ``pip install`` (and PyInstaller)
    do: from a source checkout with PYTHONDONTWRITEBYTECODE=1 (set on this machine), every
    start would compile them again, 0.2 s of the CLI's 0.6 s measured here."""
    import compileall

    import effnet_app

    folder = Path(effnet_app.__file__).parent
    compileall.compile_dir(str(folder), quiet=1)
    print(f"bytecode: compiled for {folder} first, as an installed app has it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_bytecode()
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
    result(
        "startup.window",
        f"{w:.2f}s",
        "before_import_torch",
        w < t and not any(torch_seen),
        f"import_torch:{t:.2f}s",
    )
    cli_rows(args.runs)


if __name__ == "__main__":
    main()
