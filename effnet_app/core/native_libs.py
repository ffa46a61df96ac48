"""Map PyTorch's native libraries without holding the GIL, before ``import torch``.

Importing torch in a worker thread froze the GUI thread for up to 374 ms (measured on a
2-core AMD EPYC, a 5 ms ticker on the main thread): the dynamic loader maps and
initialises libtorch_cpu (426 MB) and libtorch_cuda (480 MB), and torchvision's import
brings in triton's 506 MB library, all inside the import machinery (or ``ctypes.CDLL``),
which holds the GIL throughout. ``dlopen`` called as a foreign function through ctypes
runs with the GIL released, so ``preload`` opens the same files that way first; the
import then finds them loaded. With it the longest freeze of ``import torch`` fell to
80 ms.

The files are opened as the import would open them (``RTLD_NOW``, local symbols; the
one torch itself opens globally stays global). A CUDA build is preloaded only where its
CUDA libraries are pip's, beside torch, and ``LD_LIBRARY_PATH`` is unset: libtorch_cpu's
run path then finds the very files torch's own CUDA preloading would, and elsewhere
(a system CUDA, a split install) torch is left to pick them in its own order. Python's
bindings (libtorch_python) are left to the import. A file that is missing or does not
load is skipped: ``import torch`` then does its own work, with its own error messages.
Linux only (elsewhere this does nothing); nothing here imports torch.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from importlib import util
from pathlib import Path

log = logging.getLogger(__name__)

# In the order the libraries depend on each other; a CPU-only build lacks the CUDA ones.
TORCH_LIBS = (
    "libtorch_global_deps.so",  # opened with RTLD_GLOBAL by torch itself
    "libc10.so",
    "libtorch_cpu.so",
    "libc10_cuda.so",
    "libtorch_cuda.so",
    "libtorch.so",
)
GLOBAL = {"libtorch_global_deps.so"}

_lock = threading.Lock()
_done = False


def _package_dir(name: str) -> Path | None:
    try:
        spec = util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def library_files() -> list[tuple[Path, bool]]:
    """(file, opened globally) for each of torch's (and triton's) libraries installed here."""
    found = []
    torch_dir = _package_dir("torch")
    if torch_dir is not None and not _cuda_elsewhere(torch_dir):
        for name in TORCH_LIBS:
            path = torch_dir / "lib" / name
            if path.is_file():
                found.append((path, name in GLOBAL))
    triton_dir = _package_dir("triton")  # torchvision's import reaches it through dynamo
    if triton_dir is not None and (triton_dir / "_C" / "libtriton.so").is_file():
        found.append((triton_dir / "_C" / "libtriton.so", False))
    return found


def _cuda_elsewhere(torch_dir: Path) -> bool:
    """Whether a CUDA build of torch may take its CUDA libraries from outside pip's
    ``nvidia`` folder beside it (where its run path points)."""
    if not (torch_dir / "lib" / "libtorch_cuda.so").is_file():
        return False  # a CPU-only build: no CUDA libraries to find
    return bool(os.environ.get("LD_LIBRARY_PATH")) or not (torch_dir.parent / "nvidia").is_dir()


def _dlopen():
    libc = ctypes.CDLL(None)  # a CDLL's functions release the GIL while they run
    dlopen = libc.dlopen
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return dlopen


def preload() -> int:
    """Open torch's libraries with the GIL released; how many were opened (0: nothing to do).

    Safe to call from any thread, any number of times; only the first call works.
    """
    global _done
    with _lock:
        if _done or "torch" in sys.modules or not sys.platform.startswith("linux"):
            _done = True
            return 0
        _done = True
        try:
            dlopen = _dlopen()
        except (OSError, AttributeError) as exc:
            log.debug("no dlopen to preload torch's libraries with: %s", exc)
            return 0
        opened = 0
        for path, shared in library_files():
            flags = os.RTLD_NOW | (os.RTLD_GLOBAL if shared else os.RTLD_LOCAL)
            if dlopen(os.fsencode(path), flags):
                opened += 1
            else:
                log.debug("could not preload %s; the import will open it", path)
        return opened
