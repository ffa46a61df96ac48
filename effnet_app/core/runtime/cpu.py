"""What this computer's processor is and can do, read without importing torch.

Runtimes are given as many threads as there are physical cores this process may use:
a second hyper-thread on a core adds little to convolution throughput and takes time
from the decode threads that share the cores. ``cpu_signature`` names the processor,
the instruction sets that change which runtime or precision is fastest, and the core
count: a measured backend choice is remembered under it, so another computer (or the
same disk in another one) measures again. ``cuda_may_be_present`` asks the NVIDIA driver
itself through ctypes, so the torch-free classify path can tell that it may stay
torch-free without paying 2.5 s for ``import torch``.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
import sys
from functools import cache
from pathlib import Path

# The instruction sets that decide between runtimes and precisions: AVX-512 and AMX make
# OpenVINO fast (bf16 on AMX), VNNI speeds int8, NEON is the ARM vector unit.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni", "neon")

_CPUINFO = Path("/proc/cpuinfo")
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cpuinfo_blocks() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical processor (empty when there is none)."""
    try:
        text = _CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    blocks: list[dict[str, str]] = []
    for chunk in text.split("\n\n"):
        fields = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _usable_logical() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cgroup_limit() -> int | None:
    """The whole CPUs a cgroup v2 quota allows (a container given "2 CPUs"), if any."""
    try:
        quota, period = _CGROUP_CPU_MAX.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def _linux_physical_cores(usable: set[int] | None) -> int | None:
    """Distinct (package, core) pairs among the logical processors this process may use."""
    cores = set()
    for block in _cpuinfo_blocks():
        try:
            logical = int(block["processor"])
        except (KeyError, ValueError):
            continue
        if usable is not None and logical not in usable:
            continue
        if "core id" not in block:
            return None  # ARM and some VMs do not say: fall back to the logical count
        cores.add((block.get("physical id", "0"), block["core id"]))
    return len(cores) or None


@cache
def physical_cores() -> int:
    """Physical cores this process may run on; at least 1."""
    usable = _usable_logical()
    found = _linux_physical_cores(usable) if sys.platform.startswith("linux") else None
    if found is None:
        found = _psutil_physical_cores()
    if found is None:
        found = len(usable) if usable else (os.cpu_count() or 1)
    limit = _cgroup_limit() if sys.platform.startswith("linux") else None
    return max(1, min(found, limit) if limit else found)


def _psutil_physical_cores() -> int | None:
    """macOS and Windows: psutil knows the physical count when it is installed."""
    if sys.platform.startswith("linux"):
        return None
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False) or None


def inference_threads() -> int:
    """Threads for an inference runtime: one per physical core."""
    return physical_cores()


@cache
def cpu_name() -> str:
    """The processor's marketing name ("AMD EPYC", "Apple M2"), or the machine type."""
    first = next(iter(_cpuinfo_blocks()), {})
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if first.get(key):
            return " ".join(first[key].split())
    if sys.platform == "darwin":
        name = _darwin_brand()
        if name:
            return name
    if sys.platform == "win32":
        name = _windows_brand()
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown processor"


def _darwin_brand() -> str | None:
    try:
        libc = ctypes.CDLL("/usr/lib/libSystem.B.dylib")
        size = ctypes.c_size_t(256)
        buffer = ctypes.create_string_buffer(256)
        if libc.sysctlbyname(b"machdep.cpu.brand_string", buffer, ctypes.byref(size), None, 0):
            return None
        return buffer.value.decode(errors="replace").strip() or None
    except (OSError, AttributeError):
        return None


def _windows_brand() -> str | None:
    try:
        import winreg

        key = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
            return str(winreg.QueryValueEx(handle, "ProcessorNameString")[0]).strip() or None
    except (ImportError, OSError):
        return None


@cache
def isa_flags() -> tuple[str, ...]:
    """Which of ``ISA_FLAGS`` this processor has (as far as the system says)."""
    first = next(iter(_cpuinfo_blocks()), {})
    present = set((first.get("flags", "") + " " + first.get("Features", "")).split())
    if "asimd" in present or platform.machine().lower() in ("arm64", "aarch64"):
        present.add("neon")  # ARMv8's vector unit is always there; Linux calls it asimd
    return tuple(flag for flag in ISA_FLAGS if flag in present)


def cpu_signature() -> str:
    """A short, stable text naming this processor for cache keys."""
    flags = "+".join(isa_flags()) or "no-simd-flags"
    return f"{cpu_name()} | {flags} | {physical_cores()} cores | {platform.machine()}"


def _driver_library():
    names = {"win32": ("nvcuda.dll",), "linux": ("libcuda.so.1", "libcuda.so")}
    for name in names.get("linux" if sys.platform.startswith("linux") else sys.platform, ()):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@cache
def cuda_may_be_present() -> bool:
    """Whether an NVIDIA GPU may be usable: the driver loads and counts a device.

    Asked of the driver directly, never of torch. False means torch cannot find a CUDA
    device either; True means it may (the torch build might still lack CUDA).
    """
    library = _driver_library()
    if library is None:
        return False
    try:
        if library.cuInit(0) != 0:
            return False
        count = ctypes.c_int(0)
        return library.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except (AttributeError, OSError):
        return False
