"""SHA-256 of weights files, read once per file, size and mtime.

Hashing a 250 MB file takes a while, and the app asks "is this file intact?" every time it
lists the models. The answer is kept in ``.verified.json`` in the weights folder: a
file's absolute path -> [size, mtime_ns, sha256]. A file that changes size or mtime is
hashed again; an entry whose file is gone is dropped at the next write. The cache is a
convenience: when it cannot be written, files are simply hashed again next time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import fsutil
from ..errors import AppError, WeightsError
from ..paths import weights_dir

VERDICTS_FILE = ".verified.json"
DAMAGED_SUFFIX = ".damaged"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _verdict_key(path: Path) -> str:
    return os.path.abspath(path)


def _read_verdicts() -> dict:
    try:
        verdicts = json.loads((weights_dir() / VERDICTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return verdicts if isinstance(verdicts, dict) else {}


def _stamp(path: Path) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def remember_sha256(path: Path, digest: str) -> None:
    """Note ``path``'s hash for its current size and mtime (best effort: a cache)."""
    verdicts = {k: v for k, v in _read_verdicts().items() if os.path.exists(k)}
    try:
        verdicts[_verdict_key(path)] = [*_stamp(path), digest]
        fsutil.atomic_write(weights_dir() / VERDICTS_FILE, json.dumps(verdicts, indent=1))
    except (OSError, AppError):
        pass  # a read-only cache folder: the file is hashed again next time


def remembered_sha256(path: Path) -> str | None:
    """``path``'s SHA-256, hashed once per size and mtime; None when it cannot be read."""
    try:
        stamp = _stamp(path)
    except OSError:
        return None
    known = _read_verdicts().get(_verdict_key(path))
    if isinstance(known, list) and len(known) == 3 and known[:2] == stamp:
        return str(known[2])
    try:
        digest = file_sha256(path)
    except OSError:
        return None
    remember_sha256(path, digest)
    return digest


def set_aside(path: Path) -> Path:
    """Rename a damaged file to ``NAME.damaged`` (replacing an older one); returns it."""
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    with fsutil.disk_errors(aside, WeightsError):
        os.replace(path, aside)
    return aside


def is_intact(spec, path: Path) -> bool | None:
    """Whether ``path``'s SHA-256 matches the spec's published one; None if unreadable.

    A spec without a published hash (a name torchvision did not give) has nothing to
    hold the file to, and any file is taken as it is.
    """
    prefix = spec.sha256_prefix
    if not prefix:
        return True
    digest = remembered_sha256(path)
    return None if digest is None else digest.startswith(prefix)
