"""The model as data: read once on the driver, checked and written out on every worker.

A ``ModelPackage`` holds the bytes of the files a worker needs to run the model, with
their SHA-256, and the few numbers that turn logits into results (temperature, the
"not sure" threshold). The driver builds it from what the app would run locally:

- on CPU workers, the verified export (``model.onnx``) that ``engines`` chose, run by
  the same runtime (ONNX Runtime or OpenVINO) at the same precision;
- otherwise (GPU workers, or a model PyTorch runs best), the weights file: a zoo
  model's checkpoint, or a trained bundle's ``manifest.json`` and ``model.safetensors``.

``ray.put`` puts it in the object store once; ``materialise`` on a worker checks every
file's hash before writing it to a private temporary folder, then makes the backend
with the app's own classes (``OnnxRuntimeBackend``, ``OpenVinoBackend``, ``TorchBackend``).
Workers never download, and never unpickle a model file: exports are ONNX, bundles are
safetensors, and zoo checkpoints go through ``weights.load_model``'s own checks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ModelError
from ..core.models.zoo import Preprocess
from ..core.runtime.choices import LABELS

EXPORT_KINDS = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class ModelPackage:
    """What travels to the workers. ``kind`` is "onnxruntime", "openvino" or "torch"."""

    kind: str
    model_key: str  # zoo key or "user:NAME": how the worker names the model
    files: dict[str, bytes]  # file name -> contents
    digests: dict[str, str]  # file name -> SHA-256 of the contents
    main_file: str  # the model file (export) or weights file (torch) among ``files``
    preprocess: dict  # Preprocess.to_dict()
    precision: str = "fp32"
    temperature: float = 1.0
    unknown_threshold: float | None = None
    bundle_folder: str | None = None  # a trained bundle's folder name (torch kind only)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def wants(self) -> str:
        """The array kind its backend reads ("numpy" for exports, "torch" for PyTorch)."""
        return "numpy" if self.kind in EXPORT_KINDS else "torch"

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.files.values())

    def engine(self, device: str = "cpu") -> str:
        """The runtime and precision, as ``Backend.describe`` says it ("ONNX Runtime fp32")."""
        if self.kind == "torch" and device.startswith("cuda"):
            return f"{LABELS['torch']} fp16 autocast"
        return f"{LABELS.get(self.kind, self.kind)} {self.precision}"

    def preprocessing(self) -> Preprocess:
        return Preprocess.from_dict(self.preprocess)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(paths: dict[str, Path]) -> tuple[dict[str, bytes], dict[str, str]]:
    files = {name: Path(path).read_bytes() for name, path in paths.items()}
    return files, {name: sha256_of(data) for name, data in files.items()}


def from_export(spec, info, kind: str, precision: str, notes=()) -> ModelPackage:
    """The package of a verified export (``export.sidecar.ExportInfo``) run by ``kind``."""
    names = dict.fromkeys([info.model_file, *info.files])
    model_files = {n: Path(info.folder) / n for n in names if n.startswith("model.")}
    files, digests = _read(model_files)
    if info.sha256 and digests[info.model_file] != info.sha256:
        raise ModelError(
            f"The optimised copy of {spec.name} changed while it was being read; run again."
        )
    return ModelPackage(
        kind=kind,
        model_key=spec.key,
        files=files,
        digests=digests,
        main_file=info.model_file,
        preprocess=spec.preprocess.to_dict(),
        precision=precision,
        temperature=float(spec.temperature),
        unknown_threshold=spec.unknown_threshold,
        notes=tuple(notes),
    )


def from_weights(spec, weights_path: Path, notes=()) -> ModelPackage:
    """The package PyTorch workers run: a zoo checkpoint, or a trained bundle's files."""
    from ..core.models import bundle

    if spec.bundle_path is not None:
        folder = Path(spec.bundle_path)
        paths = {name: folder / name for name in (bundle.MANIFEST, bundle.WEIGHTS)}
        main, bundle_folder = bundle.WEIGHTS, folder.name
    else:
        paths = {Path(weights_path).name: Path(weights_path)}
        main, bundle_folder = Path(weights_path).name, None
    files, digests = _read(paths)
    return ModelPackage(
        kind="torch",
        model_key=spec.key,
        files=files,
        digests=digests,
        main_file=main,
        preprocess=spec.preprocess.to_dict(),
        temperature=float(spec.temperature),
        unknown_threshold=spec.unknown_threshold,
        bundle_folder=bundle_folder,
        notes=tuple(notes),
    )


def write_checked(package: ModelPackage, folder: Path) -> Path:
    """Write every file into ``folder`` after checking its hash; the main file's path.

    A file whose bytes do not match the driver's SHA-256 (damaged in transit or in the
    object store) raises ``ModelError`` before anything reads it.
    """
    if package.bundle_folder:
        folder = folder / package.bundle_folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in package.files.items():
        if os.sep in name or name.startswith("."):
            raise ModelError(f"The model package names an unsafe file: {name!r}.")
        if sha256_of(data) != package.digests.get(name):
            raise ModelError(
                f"The model file {name} arrived damaged on this worker (SHA-256 mismatch)."
            )
        (folder / name).write_bytes(data)
    return folder / package.main_file


def make_backend(package: ModelPackage, folder: Path, device: str = "cpu", threads=None):
    """The app's own backend for the package, its files written into ``folder`` first."""
    main = write_checked(package, folder)
    if package.kind == "onnxruntime":
        from ..core.runtime.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(main, threads=threads, sha256=package.digests[package.main_file])
    if package.kind == "openvino":
        from ..core.runtime.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(
            main,
            threads=threads,
            precision=package.precision,
            sha256=package.digests[package.main_file],
        )
    from ..core.runtime.torch_backend import TorchBackend

    return TorchBackend(_worker_spec(package, main), device, main)


def _worker_spec(package: ModelPackage, main: Path):
    """The ModelSpec on the worker: from the zoo, or from the bundle files just written."""
    from ..core.models import bundle, zoo

    if package.bundle_folder:
        return bundle.read_bundle(main.parent).spec()
    return zoo.get_spec(package.model_key)
