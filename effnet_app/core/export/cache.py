"""Checked exports kept in the cache folder, one per model, for the faster engines.

``exports/<key>/`` holds a model's verified ONNX export. ``find_current`` is the fast
path's question "is there one I may use?": it reads export.json and stats files, never
hashes and never imports torch, so it costs a few milliseconds. An export is current
while the weights file it was made from is unchanged (path, size, mtime), its files
have their recorded sizes and every runtime agreed with PyTorch. The backend that
loads the file checks its SHA-256; a damaged one is ``discard``ed and made again.
``ensure_export`` makes one in a part folder beside the target and swaps it in whole.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import uuid
from collections.abc import Generator
from pathlib import Path

from .. import fsutil, paths
from ..errors import ExportError
from ..jobs import NEVER, CancelToken, Progress
from ..models import zoo
from ..models.bundle import KEY_PREFIX, clean_stale
from .sidecar import INFO, ExportInfo, read_export

log = logging.getLogger(__name__)

EXPORTS = "exports"
# Zoo keys, known without torchvision (which the full specs need): a bare other name is
# a trained model's, as the registry resolves it.
_ZOO_KEYS = frozenset({f"b{i}" for i in zoo._B_TABLE} | {f"lite{i}" for i in zoo._LITE_TABLE})


def exports_dir() -> Path:
    """The folder of cached exports (made by the first ``ensure_export``, not by finding)."""
    return paths.cache_dir() / EXPORTS


def normalise_key(key: str) -> str:
    """A model key as the registry spells it: "b0", "lite0", or "user:NAME"."""
    text = str(key).strip()
    if text.startswith(KEY_PREFIX):
        return text
    lowered = text.lower().replace("efficientnet-", "").replace("efficientnet_", "")
    return lowered if lowered in _ZOO_KEYS else KEY_PREFIX + text


def key_folder(key: str) -> Path:
    """Where the export of ``key`` lives: exports/<key as a safe folder name>."""
    return exports_dir() / fsutil.safe_folder_name(normalise_key(key))


def find_current(key: str) -> ExportInfo | None:
    """The cached export of ``key`` when it may be used as it is; None otherwise.

    Cheap and torch-free: export.json is read and files are stat-ed, nothing is hashed.
    """
    key = normalise_key(key)
    folder = key_folder(key)
    if not os.path.isfile(folder / INFO):
        return None
    try:
        info = read_export(folder)
    except ExportError as exc:
        log.warning("cached export of %s skipped: %s", key, exc)
        return None
    usable = info.key == key and info.format == "onnx" and info.verified()
    if usable and info.files_present() and info.source_is_current():
        return info
    return None


def _scratch(target: Path, kind: str) -> Path:
    # The names bundle.clean_stale tidies: .NAME.<32 hex>.part|old|del
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.{kind}")


def matches_weights(info: ExportInfo, weights_path) -> bool:
    """Whether ``info`` was made from ``weights_path`` (a file or a bundle folder; None: any)."""
    if weights_path is None:
        return True
    given = Path(weights_path)
    given = given / "model.safetensors" if given.is_dir() else given
    return info.source.get("path") == os.path.abspath(given)


def ensure_export(
    spec,
    weights_path: str | os.PathLike | None = None,
    cancel: CancelToken = NEVER,
    model=None,
    *,
    reference=None,
    limit: int | None = None,
    isolated: bool = False,
) -> Generator[Progress, None, ExportInfo]:
    """Job: the current export of ``spec``, made (and checked) first when there is none.

    ``isolated`` makes it in a child process (``child``), so the caller's other threads
    (a window's) keep running; not with a ``model`` or ``reference`` in memory.

    The new export is made in a part folder beside its place and renamed into it, so a
    crash or cancel never leaves half an export where ``find_current`` looks.
    """
    from .onnx_export import export_job

    current = find_current(spec.key)
    if current is not None and matches_weights(current, weights_path):
        return current
    target = key_folder(spec.key)
    with fsutil.disk_errors(target, ExportError):
        target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target.parent)
    part = _scratch(target, "part")
    try:
        if isolated and model is None and reference is None:
            from .child import export_in_child

            info = yield from export_in_child(spec, weights_path, part, cancel, limit)
        else:
            info = yield from export_job(
                spec, weights_path, part, cancel, model, reference=reference, limit=limit
            )
        return _swap_in(part, target, info)
    finally:
        shutil.rmtree(part, ignore_errors=True)


def _swap_in(part: Path, target: Path, info: ExportInfo) -> ExportInfo:
    """Rename ``part`` to ``target``; an older export there is set aside, then removed."""
    old = None
    with fsutil.disk_errors(target, ExportError):
        if os.path.lexists(target):
            old = _scratch(target, "old")
            os.rename(target, old)
        try:
            os.rename(part, target)
        except OSError:
            if not os.path.lexists(target):
                if old is not None:
                    os.rename(old, target)
                raise
            # Another process swapped in its export of the same model meanwhile.
            log.info("another export of %s arrived first; using it", info.key)
            raced = find_current(info.key)
            if raced is None:
                raise
            return raced
        finally:
            if old is not None and os.path.lexists(target):
                shutil.rmtree(old, ignore_errors=True)
    return dataclasses.replace(info, folder=target)


def discard(key: str) -> bool:
    """Remove the cached export of ``key`` (damaged or refused); True when one was there."""
    target = key_folder(key)
    if not os.path.lexists(target):
        return False
    gone = _scratch(target, "del")
    try:
        os.rename(target, gone)
    except OSError as exc:
        log.warning("could not remove the export in %s: %s", target, exc)
        return False
    shutil.rmtree(gone, ignore_errors=True)
    log.info("removed the cached export of %s", key)
    return True
