"""Any model the app runs, as a checked ONNX file.

``export_onnx`` writes the network alone, with torch's current exporter (``dynamo=True``):
a normalised float32 NCHW batch named "input" in, "logits" out, the batch axis dynamic,
one self-contained file. Preprocessing, softmax and a trained model's temperature stay
outside, described in the sidecar files. ``export_job`` makes a whole export folder: it
converts, checks the file against PyTorch fp32 with every runtime installed (``verify``)
and writes the sidecars; whatever fails, the folder is removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from ... import __version__
from .. import fsutil
from ..errors import ExportError
from ..jobs import NEVER, CancelToken, Progress
from . import sidecar, verify
from .sidecar import BATCH_AXIS, INPUT_NAME, MODEL_ONNX, OUTPUT_NAME, ExportInfo

# The newest opset both ONNX Runtime 1.2x-1.3x and OpenVINO 2024+ read, and the one the
# dynamo exporter writes natively (an older one is converted afterwards, op by op).
OPSET = 18
_VERSIONED = ("torch", "onnx", "onnxscript", "onnxruntime", "openvino")


def _sync_and_rename(part: Path, target: Path) -> None:
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, target)


def _cpu_model(model):
    import copy

    first = next(model.parameters(), None)
    if first is not None and first.device.type != "cpu":
        model = copy.deepcopy(model).to("cpu")  # the caller's model stays where it is
    return model.eval()


def export_onnx(model, resolution: int, path: str | os.PathLike) -> Path:
    """Write ``model`` (an eval ``nn.Module``) as one ONNX file at ``path``; returns it.

    Written as a hidden part file beside ``path`` and renamed when complete, so a kill
    mid-way never leaves a file by the final name. ``verbose=False`` keeps the
    exporter's progress lines off stdout.
    """
    import torch

    path = Path(path)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    example = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    try:
        program = torch.onnx.export(
            _cpu_model(model), (example,), dynamo=True, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim(BATCH_AXIS)},),
            external_data=False, optimize=True, verbose=False, report=False,
        )  # fmt: skip
        with fsutil.disk_errors(path, ExportError):
            program.save(str(part), external_data=False)
            _sync_and_rename(part, path)
    except ExportError:
        raise
    except Exception as exc:  # the exporter raises many kinds; each means "cannot convert"
        raise ExportError(
            f"The model could not be converted to ONNX ({type(exc).__name__}). Use it with "
            "PyTorch, and report this problem with the log.",
            detail=repr(exc)[:4000],
        ) from exc
    finally:
        part.unlink(missing_ok=True)
    return path


def _source_file(spec, weights_path, model) -> Path | None:
    """The weights file whose export this is (None: a network given without one)."""
    if weights_path is not None:
        given = Path(weights_path)
        return given / "model.safetensors" if given.is_dir() else given
    if model is not None:
        return None  # a network in memory is no file: its export is never "current"
    from ..models import registry

    return registry.weights_path(spec)


def _versions() -> dict:
    found = {"app": __version__}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _info(spec, folder: Path, source: Path | None, digest: str, agreements) -> ExportInfo:
    size = (folder / MODEL_ONNX).stat().st_size
    return ExportInfo(
        folder=folder, key=spec.key, name=spec.name, family=spec.family,
        categories=tuple(spec.categories), preprocess=spec.preprocess,
        temperature=float(spec.temperature), unknown_threshold=spec.unknown_threshold,
        source=sidecar.source_identity(source), model_file=MODEL_ONNX, sha256=digest,
        opset=OPSET, created=datetime.now(UTC).isoformat(timespec="seconds"),
        app_version=__version__, agreements=tuple(agreements), format="onnx",
        files={MODEL_ONNX: (size, digest)}, model=sidecar.model_figures(spec),
        versions=_versions(),
    )  # fmt: skip


def _needs_runtime() -> tuple[str, ...]:
    runtimes = verify.available_runtimes()
    if not runtimes:
        raise ExportError(
            "Neither onnxruntime nor openvino is installed, so an export cannot be checked "
            "or run. Install one (`pip install onnxruntime`), or use the model with PyTorch."
        )
    return runtimes


def _fresh_folder(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise ExportError(f"{folder} is not empty; an export is made in a folder of its own.")
    with fsutil.disk_errors(folder, ExportError):
        folder.mkdir(parents=True, exist_ok=True)


def export_job(
    spec,
    weights_path: str | os.PathLike | None,
    folder: str | os.PathLike,
    cancel: CancelToken = NEVER,
    model=None,
    *,
    reference: verify.Reference | None = None,
    limit: int | None = None,
) -> Generator[Progress, None, ExportInfo]:
    """Job: a checked export of ``spec`` in the new folder ``folder``; its ExportInfo.

    ``model`` is the network to export (default: ``registry.load_network``); pass its
    ``weights_path`` too, or the export cannot be matched to a file later. ``reference``
    reuses PyTorch's answers already computed; ``limit`` checks fewer reference inputs.
    Every runtime installed must agree (``verify``), else ExportError; on any failure
    or cancel the folder is removed.
    """
    from .. import native_libs

    native_libs.preload()
    folder = Path(folder)
    runtimes = _needs_runtime()
    source = _source_file(spec, weights_path, model)
    _fresh_folder(folder)
    try:
        if model is None:
            yield Progress(0, 3, f"Loading {spec.name}…", "steps")
            from ..models import registry

            model = registry.load_network(spec, weights_path, cancel)
        cancel.raise_if_cancelled()
        yield Progress(1, 3, f"Converting {spec.name} to ONNX…", "steps")
        export_onnx(model, spec.resolution, folder / MODEL_ONNX)
        if reference is None:
            reference = yield from verify.reference_job(model, spec, limit, cancel)
        digest = sidecar.file_sha256(folder / MODEL_ONNX)
        agreements = yield from verify.check_job(
            folder / MODEL_ONNX, reference, runtimes, spec.name, sha256=digest, cancel=cancel
        )
        info = _info(spec, folder, source, digest, agreements)
        sidecar.write_export(folder, info)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    yield Progress(3, 3, f"{spec.name} exported and checked", "steps")
    return info
