"""What the app runs on: versions, OS and GPU, for the About box and error reports."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from .. import __version__
from . import paths


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _first_version(*dists: str) -> str:
    for dist in dists:
        found = _version(dist)
        if found != "not installed":
            return found
    return "not installed"


def gpu_summary() -> str:
    """GPU facts without paying for ``import torch`` when it is not loaded yet."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "not checked (PyTorch not loaded yet)"
    try:
        if not torch.cuda.is_available():
            return "no CUDA device (PyTorch built for CUDA %s)" % (torch.version.cuda or "none")
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return ", ".join(names)
    except Exception as exc:  # a broken driver must not break an error report
        return f"unknown ({exc})"


def environment() -> dict[str, str]:
    return {
        "effnet_app": __version__,
        "Python": sys.version.split()[0],
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "PyTorch": _version("torch"),
        "torchvision": _version("torchvision"),
        "Pillow": _version("pillow"),
        "PySide6": _first_version("PySide6-Essentials", "PySide6"),
        "GPU": gpu_summary(),
    }


def report(extra: dict[str, str] | None = None) -> str:
    """Plain text: versions, then the folders the app uses."""
    lines = [f"{k}: {v}" for k, v in {**environment(), **(extra or {})}.items()]
    lines.append("")
    lines += [f"{name} folder: {folder}" for name, folder in paths.all_dirs().items()]
    lines.append(f"log file: {paths.log_file()}")
    return "\n".join(lines)
