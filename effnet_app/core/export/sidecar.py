"""What travels beside an exported model: its labels, its preprocessing, and export.json.

An export folder holds the model file (``model.onnx``, or ``model.xml`` + ``model.bin``),
``labels.txt`` (one class per line, in index order), ``preprocessing.json`` (how to turn
an image into the network's input, for anyone's code) and ``export.json`` (this app's
record: where the model came from, the files' SHA-256 and sizes, and how each runtime
agreed with PyTorch). ``ExportInfo`` is that record in memory; ``read_export`` reads it
back without hashing anything and without torch, so the fast path can trust a folder
by its stat alone and leave the hash to the backend that loads the file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import fsutil
from ..errors import ExportError
from ..models.checksums import file_sha256  # noqa: F401 - re-exported for export code
from ..models.zoo import ModelSpec, Preprocess

FORMAT_VERSION = 1
MODEL_ONNX = "model.onnx"
MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
LABELS = "labels.txt"
PREPROCESSING = "preprocessing.json"
INFO = "export.json"
README = "README.md"
INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "input", "logits", "batch"
# Every name an export of ours may hold: a folder with only these is ours to replace.
OUR_FILES = frozenset({MODEL_ONNX, MODEL_XML, MODEL_BIN, LABELS, PREPROCESSING, INFO, README})

FP32_MAX_PROB_DIFF = 1e-4  # fp32 runtimes must match PyTorch's probabilities this closely
# ... or, for a model whose own fp32 rounding is larger (a head with huge weights, a sharp
# temperature), within 4x of what two PyTorch fp32 evaluations of it differ by; never
# more than this, whatever the model.
FP32_MAX_TOLERANCE = 1e-2
LOW_PRECISION_TOP1 = 0.995  # bf16 / int8 must keep top-1 on this share of the references
# Fields of ModelSpec kept in export.json, so spec() needs neither torch nor torchvision.
_SPEC_FIELDS = (
    "params", "gflops", "file_size_mb", "top1", "top5", "width_mult", "depth_mult",
    "dropout", "feature_dim", "weights_url", "weights_package", "weights_package_file",
)  # fmt: skip


@dataclass(frozen=True)
class Agreement:
    """How one runtime at one precision agreed with PyTorch fp32 on the reference inputs.

    ``tolerance`` is the largest probability difference allowed at fp32: 1e-4, or more
    for a model whose own fp32 rounding is larger (see ``verify``).
    """

    backend: str  # "onnxruntime", "openvino"
    precision: str  # "fp32", "bf16"
    images: int
    top1_agreement: float  # share of the references with the same top-1 class
    max_prob_diff: float  # largest difference of any class probability, any image
    tolerance: float = FP32_MAX_PROB_DIFF

    @property
    def agreeing(self) -> int:
        return round(self.top1_agreement * self.images)

    def passes(self) -> bool:
        if self.precision == "fp32":
            allowed = min(max(self.tolerance, FP32_MAX_PROB_DIFF), FP32_MAX_TOLERANCE)
            return self.top1_agreement == 1.0 and self.max_prob_diff <= allowed
        return self.top1_agreement >= LOW_PRECISION_TOP1

    def describe(self) -> str:
        """'onnxruntime fp32: top-1 agrees on 200/200 reference images, largest …'."""
        text = (
            f"{self.backend} {self.precision}: top-1 agrees on {self.agreeing}/{self.images} "
            f"reference images, largest probability difference {self.max_prob_diff:.1e}"
        )
        if self.precision == "fp32" and self.tolerance > FP32_MAX_PROB_DIFF:
            text += f" (allowed {self.tolerance:.1e}: this model's own fp32 rounding is large)"
        return text

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "precision": self.precision,
            "images": self.images,
            "top1_agreement": self.top1_agreement,
            "max_prob_diff": self.max_prob_diff,
            "tolerance": self.tolerance,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Agreement:
        return cls(
            str(d["backend"]),
            str(d["precision"]),
            int(d["images"]),
            float(d["top1_agreement"]),
            float(d["max_prob_diff"]),
            float(d.get("tolerance", FP32_MAX_PROB_DIFF)),
        )


@dataclass(frozen=True)
class ExportInfo:
    """One verified export: what model it is, its files, and how it agreed with PyTorch."""

    folder: Path
    key: str  # "lite0", "b3", "user:NAME"
    name: str
    family: str
    categories: tuple[str, ...]
    preprocess: Preprocess
    temperature: float  # the app divides logits by this before softmax
    unknown_threshold: float | None  # top-1 probability below this -> "not sure"
    source: dict = field(compare=False)  # the weights file exported: path, size, mtime_ns
    model_file: str = MODEL_ONNX
    sha256: str = ""  # of model_file
    opset: int = 0
    created: str = ""
    app_version: str = ""
    agreements: tuple[Agreement, ...] = ()
    format: str = "onnx"  # "onnx" | "openvino"
    files: dict = field(default_factory=dict, compare=False)  # name -> [size, sha256]
    model: dict = field(default_factory=dict, compare=False)  # ModelSpec's other figures
    versions: dict = field(default_factory=dict, compare=False)  # torch, onnx, runtimes

    @property
    def model_path(self) -> Path:
        return Path(self.folder) / self.model_file

    def spec(self) -> ModelSpec:
        """The model as a ModelSpec, built from export.json alone (no network definition)."""
        values = {name: self.model.get(name) for name in _SPEC_FIELDS}
        bundle = self.model.get("bundle_path")
        return ModelSpec(
            key=self.key, name=self.name, family=self.family, preprocess=self.preprocess,
            categories=self.categories, temperature=self.temperature,
            unknown_threshold=self.unknown_threshold,
            bundle_path=Path(bundle) if bundle else None, builder=None, **values,
        )  # fmt: skip

    def source_is_current(self) -> bool:
        """Whether the weights file exported is still there, unchanged (stat only)."""
        path = (self.source or {}).get("path")
        if not path:
            return False
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            return False
        return [info.st_size, info.st_mtime_ns] == [self.source["size"], self.source["mtime_ns"]]

    def files_present(self) -> bool:
        """Whether every file of the export is there with the size it was written at."""
        for name, (size, _digest) in self.files.items():
            try:
                if os.stat(Path(self.folder) / name).st_size != size:
                    return False
            except (OSError, ValueError):
                return False
        return bool(self.files) and self.model_file in self.files

    def verified(self) -> bool:
        return bool(self.agreements) and all(a.passes() for a in self.agreements)

    def describe(self) -> str:
        return "\n".join(a.describe() for a in self.agreements)


def source_identity(path: str | os.PathLike | None) -> dict:
    """What ``source_is_current`` compares later: the file's path, size and mtime."""
    if path is None:
        return {"path": None, "size": None, "mtime_ns": None}
    info = os.stat(path)
    return {"path": os.path.abspath(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def model_figures(spec: ModelSpec) -> dict:
    """The ModelSpec figures ``ExportInfo.spec`` needs, as JSON values."""
    figures = {name: getattr(spec, name) for name in _SPEC_FIELDS}
    figures["bundle_path"] = str(spec.bundle_path) if spec.bundle_path else None
    return figures


# --------------------------------------------------------------------------- writing
def preprocessing_document(preprocess: Preprocess) -> dict:
    """preprocessing.json: the numbers, and one sentence per step, for code outside the app."""
    size, crop = preprocess.resize_size, preprocess.crop_size
    steps = [
        "Open the image, turn it upright by its EXIF orientation and convert it to RGB.",
        f"Resize it ({preprocess.interpolation}, Pillow's Image.resize) so the shorter side "
        f"is {size} px; the longer side becomes int({size} * long / short).",
        f"Cut the centred {crop} x {crop} square: left = round((width - {crop}) / 2), "
        f"top = round((height - {crop}) / 2).",
        "Scale the 0-255 values to 0-1 (float32, divide by 255).",
        "Per channel (R, G, B), subtract mean and divide by std.",
        "Put channels first and add a batch axis: float32 (N, 3, "
        f"{crop}, {crop}), named '{INPUT_NAME}'; the output '{OUTPUT_NAME}' is (N, classes).",
    ]
    return {
        "format_version": FORMAT_VERSION,
        **preprocess.to_dict(),
        "input_layout": "NCHW",
        "dtype": "float32",
        "color": "RGB",
        "value_range": [0.0, 1.0],
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "steps": steps,
    }


def _info_document(info: ExportInfo) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "key": info.key, "name": info.name, "family": info.family, "format": info.format,
        "model_file": info.model_file, "sha256": info.sha256,
        "files": {name: list(value) for name, value in info.files.items()},
        "opset": info.opset, "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
        "categories": list(info.categories), "preprocess": info.preprocess.to_dict(),
        "temperature": info.temperature, "unknown_threshold": info.unknown_threshold,
        "source": info.source, "model": info.model, "created": info.created,
        "app_version": info.app_version, "versions": info.versions,
        "agreements": [a.to_dict() for a in info.agreements],
    }  # fmt: skip


def _json(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_export(folder: str | os.PathLike, info: ExportInfo) -> None:
    """Write labels.txt, preprocessing.json and export.json into ``folder``, atomically each."""
    folder = Path(folder)
    # A class name cannot span lines in labels.txt; export.json keeps the exact names.
    labels = "".join(" ".join(str(c).splitlines()) + "\n" for c in info.categories)
    fsutil.atomic_write(folder / LABELS, labels, error_type=ExportError)
    document = preprocessing_document(info.preprocess)
    fsutil.atomic_write(folder / PREPROCESSING, _json(document), error_type=ExportError)
    fsutil.atomic_write(folder / INFO, _json(_info_document(info)), error_type=ExportError)


# --------------------------------------------------------------------------- reading
def _unusable(folder: Path, what: str) -> ExportError:
    return ExportError(f"The export in {folder} cannot be used: {what}. Export the model again.")


def _read_document(folder: Path) -> dict:
    file = folder / INFO
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ExportError(f"{folder} is not an export of this app: it has no {INFO}.") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _unusable(folder, f"its {INFO} is damaged ({exc})") from exc
    if not isinstance(document, dict):
        raise _unusable(folder, f"its {INFO} is not a JSON object")
    if document.get("format_version") != FORMAT_VERSION:
        raise _unusable(folder, f"its {INFO} is in another format")
    return document


def _threshold(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"unknown threshold {value!r}")
    return float(value)


def _info_from(folder: Path, d: dict) -> ExportInfo:
    temperature = float(d["temperature"])
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature {temperature!r}")
    categories = tuple(str(c) for c in d["categories"])
    files = {str(k): (int(v[0]), str(v[1])) for k, v in dict(d["files"]).items()}
    if not categories or str(d["model_file"]) not in files:
        raise ValueError("no classes, or no model file")
    return ExportInfo(
        folder=folder, key=str(d["key"]), name=str(d["name"]), family=str(d["family"]),
        categories=categories, preprocess=Preprocess.from_dict(d["preprocess"]),
        temperature=temperature, unknown_threshold=_threshold(d.get("unknown_threshold")),
        source=dict(d["source"]), model_file=str(d["model_file"]), sha256=str(d["sha256"]),
        opset=int(d["opset"]), created=str(d.get("created", "")),
        app_version=str(d.get("app_version", "")),
        agreements=tuple(Agreement.from_dict(a) for a in d["agreements"]),
        format=str(d["format"]), files=files, model=dict(d.get("model") or {}),
        versions=dict(d.get("versions") or {}),
    )  # fmt: skip


def read_export(folder: str | os.PathLike) -> ExportInfo:
    """The export in ``folder``, from export.json alone; ExportError says what is wrong."""
    folder = Path(folder)
    document = _read_document(folder)
    try:
        return _info_from(folder, document)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _unusable(folder, f"its {INFO} lacks a valid field ({exc!r})") from exc
