"""torch's native libraries open before ``import torch``, without importing it, and the
import then works as ever (in a fresh interpreter: this one has torch loaded already)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from effnet_app.core import native_libs

SCRIPT = r"""
import json, sys, threading, time
from effnet_app.core import native_libs
files = [str(p) for p, _ in native_libs.library_files()]
out = {}
def work():
    start = time.perf_counter()
    out["opened"] = native_libs.preload()
    out["seconds"] = time.perf_counter() - start
    out["torch_after_preload"] = "torch" in sys.modules
worker = threading.Thread(target=work)
ticks = 0
worker.start()
while worker.is_alive():  # the main thread goes on meanwhile, as the GUI thread must
    time.sleep(0.001)
    ticks += 1
with open("/proc/self/maps") as maps:
    mapped = maps.read()
out["mapped"] = [f for f in files if f in mapped]
out["again"] = native_libs.preload()
import torch
out["sum"] = float(torch.ones(3).sum())
out["files"], out["ticks"] = files, ticks
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="dlopen preloading is Linux's")
def test_preload_opens_the_libraries_without_importing_torch_and_torch_still_imports():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    names = {f.rsplit("/", 1)[-1] for f in out["files"]}
    assert {"libc10.so", "libtorch_cpu.so", "libtorch_python.so"} <= names
    assert out["opened"] == len(out["files"]) and out["mapped"] == out["files"]
    assert out["torch_after_preload"] is False  # only the files: no Python module
    assert out["again"] == 0  # once per process
    assert out["sum"] == 3.0
    # The GIL stays free while the files open: the main thread's 1 ms ticks go on. Held
    # (as ``import torch`` holds it), libtorch_cpu alone would stop them for half the time.
    assert out["ticks"] >= 0.25 * out["seconds"] / 0.0011, out


def test_with_torch_loaded_it_does_nothing():
    import torch  # noqa: F401 - loaded here, as in most of this suite

    assert native_libs.preload() == 0
