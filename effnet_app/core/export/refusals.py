"""Exports refused here, remembered so that the next run does not make and refuse them again.

A refusal (a runtime could not run the export, or its answers disagreed with PyTorch's)
depends on the model file and the runtimes' versions, so it is kept with both and
forgotten as soon as either changes: new weights, a retrained model, an upgraded runtime.
Failures of other kinds (a full disk, a cancel) are never remembered.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .. import fsutil
from ..errors import ExportError

log = logging.getLogger(__name__)

REFUSED = "refused.json"  # in the exports folder: normalised key -> what was refused


def _file() -> Path:
    from .cache import exports_dir

    return exports_dir() / REFUSED


def _source(weights_path) -> list | None:
    if weights_path is None:
        return None
    path = Path(weights_path)
    path = path / "model.safetensors" if path.is_dir() else path
    try:
        stat = path.stat()
    except OSError:
        return None
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def _read() -> dict:
    try:
        found = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def refusal(key: str, weights_path, runtimes: dict) -> str | None:
    """Why the export of ``key`` from ``weights_path`` was refused with these runtimes."""
    from .cache import normalise_key

    entry = _read().get(normalise_key(key))
    source = _source(weights_path)
    if not isinstance(entry, dict) or source is None:
        return None
    if entry.get("source") != source or entry.get("runtimes") != dict(runtimes):
        return None
    return str(entry.get("reason") or "it disagreed with PyTorch")


def remember(key: str, weights_path, runtimes: dict, reason: str) -> None:
    """Keep the refusal of ``key``'s export; a file that cannot be written is only logged."""
    from .cache import normalise_key

    source = _source(weights_path)
    if source is None:
        return
    found = _read()
    found[normalise_key(key)] = {"source": source, "runtimes": dict(runtimes), "reason": reason}
    try:
        _file().parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(_file(), json.dumps(found, indent=2), error_type=ExportError)
    except (ExportError, OSError) as exc:
        log.warning("could not remember the refused export of %s: %s", key, exc)
