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
@pytest.mark.skipif(not native_libs.library_files(), reason="torch's CUDA libraries are not pip's")
def test_preload_opens_the_libraries_without_importing_torch_and_torch_still_imports():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    names = {f.rsplit("/", 1)[-1] for f in out["files"]}
    assert {"libc10.so", "libtorch_cpu.so"} <= names
    assert out["opened"] == len(out["files"]) and out["mapped"] == out["files"]
    assert out["torch_after_preload"] is False  # only the files: no Python module
    assert out["again"] == 0  # once per process
    assert out["sum"] == 3.0
    # The GIL stays free while the files open: the main thread's 1 ms ticks go on. Held
    # (as ``import torch`` holds it), libtorch_cpu alone would stop them for half the time.
    assert out["ticks"] >= 0.2 * out["seconds"] / 0.0011, out  # 0.85 free, 0.01 held here


def test_a_cuda_build_with_its_libraries_elsewhere_is_left_to_torch(monkeypatch, tmp_path):
    torch_dir = tmp_path / "site" / "torch"
    (torch_dir / "lib").mkdir(parents=True)
    for name in ("libc10.so", "libtorch_cpu.so"):
        (torch_dir / "lib" / name).write_bytes(b"")
    monkeypatch.setattr(native_libs, "_package_dir", lambda n: torch_dir if n == "torch" else None)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    cpu_only = [p.name for p, _ in native_libs.library_files()]
    assert cpu_only == ["libc10.so", "libtorch_cpu.so"]  # a CPU-only build: preloaded
    (torch_dir / "lib" / "libtorch_cuda.so").write_bytes(b"")
    assert native_libs.library_files() == []  # CUDA from who knows where: torch decides
    (tmp_path / "site" / "nvidia").mkdir()
    assert len(native_libs.library_files()) == 3  # pip's CUDA beside torch: preloaded
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/cuda/lib64")
    assert native_libs.library_files() == []
