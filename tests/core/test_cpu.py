"""What the processor is, checked against what the system itself says (/proc/cpuinfo)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from effnet_app.core.runtime import cpu

CPUINFO = Path("/proc/cpuinfo")
linux_only = pytest.mark.skipif(not CPUINFO.is_file(), reason="reads /proc/cpuinfo")


def _cpuinfo() -> list[dict[str, str]]:
    blocks = []
    for chunk in CPUINFO.read_text().split("\n\n"):
        pairs = [line.split(":", 1) for line in chunk.splitlines() if ":" in line]
        if pairs:
            blocks.append({k.strip(): v.strip() for k, v in pairs})
    return blocks


def _in_fresh_interpreter(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_physical_cores_lie_between_one_and_the_logical_count():
    cores = cpu.physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores <= len(os.sched_getaffinity(0))
    assert cpu.inference_threads() == cores


@linux_only
def test_physical_cores_agree_with_the_cpu_cores_field():
    """Independent of the (physical id, core id) count: each package's "cpu cores" field."""
    blocks = _cpuinfo()
    if not all("cpu cores" in b and "physical id" in b for b in blocks):
        pytest.skip("this /proc/cpuinfo has no per-package core counts")
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) < len(blocks):
        pytest.skip("this process may not use every processor")
    per_package = {b["physical id"]: int(b["cpu cores"]) for b in blocks}
    assert cpu.physical_cores() == sum(per_package.values())


@linux_only
def test_name_and_flags_are_what_the_kernel_reports():
    first = _cpuinfo()[0]
    if "model name" in first:
        assert cpu.cpu_name() == " ".join(first["model name"].split())
    reported = set(first.get("flags", first.get("Features", "")).split())
    for flag in cpu.isa_flags():
        assert flag in reported or (flag == "neon" and platform.machine() in ("aarch64", "arm64"))
    for flag in cpu.ISA_FLAGS:
        if flag in reported:
            assert flag in cpu.isa_flags()


def test_signature_names_the_processor_and_is_stable():
    signature = cpu.cpu_signature()
    assert cpu.cpu_name() in signature and platform.machine() in signature
    assert f"{cpu.physical_cores()} cores" in signature
    assert all(flag in signature for flag in cpu.isa_flags())
    assert cpu.cpu_signature() == signature
    code = "import json; from effnet_app.core.runtime import cpu; print(json.dumps(cpu.cpu_signature()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == signature  # the same in another process: a usable cache key


def test_cuda_check_asks_the_driver_without_importing_torch():
    report = _in_fresh_interpreter(
        "import json, sys\n"
        "from effnet_app.core.runtime import cpu\n"
        "present = cpu.cuda_may_be_present()\n"
        "print(json.dumps({'present': present, 'torch': 'torch' in sys.modules,"
        " 'flags': list(cpu.isa_flags()), 'cores': cpu.physical_cores()}))"
    )
    assert report["torch"] is False
    assert report["cores"] == cpu.physical_cores() and report["flags"] == list(cpu.isa_flags())
    import torch

    if torch.cuda.is_available():
        assert report["present"] is True
    elif torch.version.cuda is not None:  # a CUDA build of torch that finds no GPU: nor do we
        assert report["present"] is False
