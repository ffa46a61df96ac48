"""An export for the user: the model in a folder of their choosing, ready for other code.

``export_for_user`` writes the model (``model.onnx``, or OpenVINO's ``model.xml`` +
``model.bin``), ``labels.txt``, ``preprocessing.json``, ``export.json`` and a README with
a short plain-runtime example. The ONNX file is the cache's checked export (made first
when there is none, and copied with its hash checked); an OpenVINO conversion of it is
checked against PyTorch again, since it is a new file. Everything is written into a
part folder beside the target and renamed into place only when complete and checked,
so a crash or cancel never leaves half a folder; only a new or empty folder, or one
holding nothing but an earlier export of ours, is replaced.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Generator
from pathlib import Path

from .. import fsutil
from ..errors import ExportError
from ..jobs import NEVER, CancelToken, Progress
from . import cache, sidecar, verify
from .readme import readme_text
from .sidecar import INFO, MODEL_BIN, MODEL_ONNX, MODEL_XML, OUR_FILES, README, ExportInfo

FORMATS = ("onnx", "openvino")
_COPY_CHUNK = 1 << 20


def check_target(out_dir: str | os.PathLike) -> Path:
    """The folder to write: new, empty, or an earlier export of ours; else ExportError."""
    out = Path(out_dir).expanduser()
    if out.is_symlink():
        out = Path(os.path.realpath(out))  # the folder the link names is replaced, not the link
    if not os.path.lexists(out):
        return out
    if not out.is_dir():
        raise ExportError(f"{out} is a file, not a folder. Choose a new folder for the export.")
    with fsutil.disk_errors(out, ExportError):
        names = sorted(os.listdir(out))
    strangers = [n for n in names if n not in OUR_FILES]
    if names and (strangers or INFO not in names or not _ours(out)):
        shown = (strangers or names)[0]
        raise ExportError(
            f"{out} already holds files that are not an export of this app (such as "
            f"{shown}), so nothing was written. Choose an empty or new folder."
        )
    return out


def _ours(folder: Path) -> bool:
    try:
        sidecar.read_export(folder)
    except ExportError:
        return False
    return True


def _copy_checked(source: Path, target: Path, sha256: str) -> bool:
    """Copy ``source`` to ``target``, hashing the bytes written; whether they are ``sha256``."""
    import hashlib

    digest = hashlib.sha256()
    with fsutil.disk_errors(target, ExportError), open(source, "rb") as src:
        with open(target, "xb") as out:
            while chunk := src.read(_COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    return digest.hexdigest() == sha256


def _cached_onnx(spec, weights, fmt, cancel):
    """Job: (the cache's checked export, PyTorch's reference answers or None)."""
    current = cache.find_current(spec.key)
    if current is not None and fmt == "onnx" and cache.matches_weights(current, weights):
        return current, None  # checked already; nothing needs torch
    from ..models import registry

    yield Progress(0, None, f"Loading {spec.name}…", "steps")
    model = registry.load_network(spec, weights, cancel)
    reference = yield from verify.reference_job(model, spec, None, cancel)
    info = yield from cache.ensure_export(spec, weights, cancel, model, reference=reference)
    return info, reference


def _onnx_into(part: Path, spec, weights, fmt, cancel):
    """Job: the checked ONNX file copied into ``part``; (its info, reference or None)."""
    for _attempt in (1, 2):
        info, reference = yield from _cached_onnx(spec, weights, fmt, cancel)
        if _copy_checked(info.model_path, part / MODEL_ONNX, info.sha256):
            return info, reference
        (part / MODEL_ONNX).unlink()
        cache.discard(info.key)  # damaged since it was checked: made again once
    raise ExportError(
        f"The export of {spec.name} changed on disk while it was copied (checksum), twice. "
        "Check the disk, then try again."
    )


def _to_openvino(part: Path) -> None:
    """model.onnx -> model.xml + model.bin (fp32 kept as it is), in ``part``."""
    import openvino as ov

    try:
        converted = ov.convert_model(str(part / MODEL_ONNX))
        with fsutil.disk_errors(part, ExportError):
            ov.save_model(converted, str(part / MODEL_XML), compress_to_fp16=False)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the converter means the same
        raise ExportError(
            f"OpenVINO could not convert the model ({type(exc).__name__}); nothing was "
            "written. Export it as ONNX instead (--format onnx).",
            detail=repr(exc)[:2000],
        ) from exc
    (part / MODEL_ONNX).unlink()


def _file_entry(path: Path) -> tuple[int, str]:
    return path.stat().st_size, sidecar.file_sha256(path)


def _openvino_files(part, spec, reference, cancel):
    """Job: convert, check with OpenVINO against PyTorch; (files, agreements)."""
    yield Progress(0, None, f"Converting {spec.name} to OpenVINO's format…", "steps")
    _to_openvino(part)
    files = {name: _file_entry(part / name) for name in (MODEL_XML, MODEL_BIN)}
    agreements = yield from verify.check_job(
        part / MODEL_XML, reference, ("openvino",), spec.name, cancel=cancel
    )
    return files, agreements


def _check_runtime(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f'"{fmt}" is not an export format. Choose onnx or openvino.')
    if fmt == "openvino" and "openvino" not in verify.available_runtimes():
        raise ExportError(
            "OpenVINO is not installed, so an OpenVINO export cannot be made or checked. "
            "Install it (`pip install openvino`), or export as ONNX."
        )


def export_for_user(
    spec,
    weights_path: str | os.PathLike | None,
    fmt: str,
    out_dir: str | os.PathLike,
    cancel: CancelToken = NEVER,
) -> Generator[Progress, None, ExportInfo]:
    """Job: a checked export of ``spec`` in ``out_dir`` as ``fmt``; returns its ExportInfo."""
    _check_runtime(fmt)
    out = check_target(out_dir)
    if weights_path is None:
        from ..models import registry

        weights_path = registry.weights_path(spec)  # None: loading says what to do
    with fsutil.disk_errors(out, ExportError):
        out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    try:
        with fsutil.disk_errors(out, ExportError):
            part.mkdir()
        info, reference = yield from _onnx_into(part, spec, weights_path, fmt, cancel)
        # A folder to hand on: it names no file of this computer (weights, bundle).
        source = {**info.source, "path": None}
        figures = {**info.model, "bundle_path": None}
        made = dataclasses.replace(info, folder=out, format=fmt, source=source, model=figures)
        if fmt == "openvino":
            files, agreements = yield from _openvino_files(part, spec, reference, cancel)
            made = dataclasses.replace(
                made, model_file=MODEL_XML, sha256=files[MODEL_XML][1], files=files,
                agreements=agreements,
            )  # fmt: skip
        cancel.raise_if_cancelled()
        sidecar.write_export(part, made)
        fsutil.atomic_write(part / README, readme_text(made), error_type=ExportError)
        _swap_in(part, check_target(out))
    finally:
        shutil.rmtree(part, ignore_errors=True)
    yield Progress(1, 1, f"Exported {spec.name} to {out}", "steps")
    return made


def _swap_in(part: Path, out: Path) -> None:
    """Rename ``part`` to ``out``; what was there (empty, or our export) is removed after."""
    old = None
    with fsutil.disk_errors(out, ExportError):
        if os.path.lexists(out):
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
            os.rename(out, old)
        try:
            os.rename(part, out)
        except BaseException:
            if old is not None and not os.path.lexists(out):
                os.rename(old, out)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
