"""What the model and device pickers list: plain data, built off the GUI thread.

Building the list imports torch and torchvision (seconds), so the window shows first and
asks for the catalog through a worker. Trained models carry what their manifest says
(classes, accuracy, date) so the picker and "About this model" need no second read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ..devices import DeviceChoice, list_devices
from ..errors import AppError
from ..jobs import NEVER, CancelToken, Progress
from ..models import bundle, registry, zoo
from ..models.registry import ModelSpec

TRAINED = "trained"  # ModelSpec.family of a user's bundle
SHOWN_CLASSES = 3  # class names a one-line summary shows before "…"
CLASS_NAME_CHARS = 24  # a longer class name is cut in one-line summaries


@dataclass(frozen=True)
class ModelInfo:
    key: str
    name: str
    family: str
    resolution: int
    params: int
    gflops: float | None
    top1: float | None
    available: bool  # weights on disk (downloaded, imported or bundled)
    bundled: bool  # shipped with the app: works offline
    file_size_mb: float | None
    about: str  # the "About this model" text
    phi: float = 0.0  # compound-scaling coefficient the variant's axes imply
    classes: tuple[str, ...] = ()  # a trained model's classes; () for ImageNet models
    accuracy: float | None = None  # a trained model's validation accuracy, 0..1
    created: str | None = None  # when a trained model was saved (ISO 8601, from its manifest)
    base: str | None = None  # the zoo key a trained model was trained on
    path: Path | None = None  # a trained model's folder

    @property
    def trained(self) -> bool:
        return self.family == TRAINED

    @property
    def created_date(self) -> str:
        """The local date it was saved on, "2026-12-02"; "" when unknown."""
        return local_time(self.created, "%Y-%m-%d")

    @property
    def summary(self) -> str:
        if self.trained:
            return self._trained_summary()
        parts = [f"{self.resolution}px", f"{self.params / 1e6:.1f}M params"]
        if self.top1:
            parts.append(f"top-1 {self.top1:.1f}%")
        if self.bundled:
            parts.append("built in")
        elif self.available:
            parts.append("downloaded")
        else:
            size = f" ({self.file_size_mb:.0f} MB)" if self.file_size_mb else ""
            parts.append(f"download{size}")
        return " · ".join(parts)

    def _trained_summary(self) -> str:
        """ "3 classes: cat, dog, other · accuracy 91% · 2026-12-02"."""
        parts = [classes_text(self.classes)]
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy * 100:.0f}%")
        if self.created_date:
            parts.append(self.created_date)
        return " · ".join(parts)


def classes_text(classes, shown: int = SHOWN_CLASSES) -> str:
    """ "3 classes: cat, dog, other", or "12 classes: a, b, c, …" for a long list."""
    names = [_cut(str(c)) for c in list(classes)[:shown]]
    more = ", …" if len(classes) > shown else ""
    noun = "class" if len(classes) == 1 else "classes"
    return f"{len(classes)} {noun}: {', '.join(names)}{more}"


def _cut(name: str) -> str:
    return name if len(name) <= CLASS_NAME_CHARS else name[: CLASS_NAME_CHARS - 1] + "…"


def local_time(iso: str | None, fmt: str) -> str:
    """An ISO 8601 time from a manifest in the local time zone; "" when unreadable."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime(fmt)
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelInfo, ...]
    devices: tuple[DeviceChoice, ...]

    def model(self, key: str) -> ModelInfo | None:
        return next((m for m in self.models if m.key == key), None)

    @property
    def pretrained(self) -> tuple[ModelInfo, ...]:
        return tuple(m for m in self.models if not m.trained)

    @property
    def trained(self) -> tuple[ModelInfo, ...]:
        return tuple(m for m in self.models if m.trained)


def model_info(spec: ModelSpec) -> ModelInfo:
    bundled = registry.is_bundled(spec)
    info = ModelInfo(
        key=spec.key,
        name=spec.name,
        family=spec.family,
        resolution=spec.resolution,
        params=spec.params,
        gflops=spec.gflops,
        top1=spec.top1,
        available=bundled or registry.weights_path(spec) is not None,
        bundled=bundled,
        file_size_mb=spec.file_size_mb,
        about=spec.describe_scaling() if spec.bundle_path is None else "",
        phi=spec.phi,
    )
    return info if spec.bundle_path is None else _with_bundle(info, spec)


def _with_bundle(info: ModelInfo, spec: ModelSpec) -> ModelInfo:
    """A trained model's info with what its manifest says."""
    try:
        found = bundle.read_bundle(spec.bundle_path)
    except AppError as exc:
        return replace(info, about=f"{spec.name}: {exc}", path=Path(spec.bundle_path))
    accuracy = found.metrics.get("accuracy")
    return replace(
        info,
        about=trained_about(found),
        classes=found.classes,
        accuracy=float(accuracy) if _is_number(accuracy) else None,
        created=found.created or None,
        base=found.base,
        path=found.path,
    )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _percent(value) -> str:
    return f"{value * 100:.1f} %"


def trained_about(found: bundle.Bundle) -> str:
    """ "About this model" of a trained model, one sentence a line: its classes, how well
    it did against always guessing, what it learnt from, when it says "not sure"."""
    base = zoo.get_spec(found.base)
    lines = [
        f"{found.name} tells apart {len(found.classes)} classes: {', '.join(found.classes)}.",
        f"Base model: {base.name} ({base.resolution} px, {base.params / 1e6:.1f} M "
        f"parameters), with {_what_learnt(found.metrics)} trained on your images.",
    ]
    accuracy, baseline = found.metrics.get("accuracy"), found.metrics.get("baseline")
    if _is_number(accuracy):
        images = found.metrics.get("val_size") or found.metrics.get("images")
        on = f" on {images} validation images" if _is_number(images) and images else ""
        line = f"Validation accuracy {_percent(accuracy)}{on}"
        if _is_number(baseline):
            line += f"; always guessing the biggest class would score {_percent(baseline)}"
        lines.append(line + ".")
    lines.extend(_data_lines(found.dataset))
    lines.append(_calibration_line(found))
    when = local_time(found.created, "%Y-%m-%d %H:%M")
    if when:
        lines.append(f"Created {when}.")
    return "\n".join(lines)


def _what_learnt(metrics: dict) -> str:
    if metrics.get("kept_phase") == "finetune":
        return "its last stages and a new last layer"
    return "a new last layer"


def _data_lines(dataset: dict) -> list[str]:
    """Where the training images came from and how many each class had."""
    lines = []
    source, images = dataset.get("source"), dataset.get("images")
    if source:
        count = f"{images} images" if _is_number(images) else "images"
        lines.append(f"Training data: {count} from {source}.")
    counts = dataset.get("counts")
    if isinstance(counts, dict) and counts:
        shown = ", ".join(f"{name} {n}" for name, n in counts.items())
        lines.append(f"Images per class: {shown}.")
    return lines


def _calibration_line(found: bundle.Bundle) -> str:
    if found.unknown_threshold is None:
        return 'It always names its best guess: it has no "not sure" threshold.'
    return (
        f'Below {found.unknown_threshold * 100:.0f} % confidence it says "not sure" '
        f"(calibrated with temperature {found.temperature:.2f})."
    )


def load_catalog(cancel: CancelToken = NEVER):
    """Job: every model with its figures and whether its weights are here, and the devices."""
    yield Progress(0, 2, "Loading the model list…", "steps")
    specs = registry.list_models()
    cancel.raise_if_cancelled()
    models = tuple(model_info(s) for s in specs)
    yield Progress(1, 2, "Looking for GPUs…", "steps")
    devices = tuple(list_devices())
    return Catalog(models, devices)
