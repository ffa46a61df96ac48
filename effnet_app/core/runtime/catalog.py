"""What the model and device pickers list: plain data, built off the GUI thread.

Building the list imports torch and torchvision (seconds), so the window shows first and
asks for the catalog through a worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..devices import DeviceChoice, list_devices
from ..errors import AppError
from ..jobs import NEVER, CancelToken, Progress
from ..models import bundle, registry, zoo
from ..models.registry import ModelSpec


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

    @property
    def summary(self) -> str:
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


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelInfo, ...]
    devices: tuple[DeviceChoice, ...]

    def model(self, key: str) -> ModelInfo | None:
        return next((m for m in self.models if m.key == key), None)


def model_info(spec: ModelSpec) -> ModelInfo:
    bundled = registry.is_bundled(spec)
    return ModelInfo(
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
        about=_about(spec),
        phi=spec.phi,
    )


def _about(spec: ModelSpec) -> str:
    """A trained model tells its classes and metrics; a pretrained one its scaling."""
    if spec.bundle_path is None:
        return spec.describe_scaling()
    try:
        found = bundle.read_bundle(spec.bundle_path)
    except AppError as exc:
        return f"{spec.name}: {exc}"
    lines = [
        f"{found.name}: a model trained on {zoo.get_spec(found.base).name} that tells apart "
        f"{len(found.classes)} classes: {', '.join(found.classes)}."
    ]
    accuracy, baseline = found.metrics.get("accuracy"), found.metrics.get("baseline")
    if isinstance(accuracy, int | float):
        lines.append(f"Validation accuracy {accuracy * 100:.1f} %.")
    if isinstance(baseline, int | float):
        lines.append(f"Always guessing the biggest class would score {baseline * 100:.1f} %.")
    if found.unknown_threshold is not None:
        lines.append(f'Below {found.unknown_threshold * 100:.0f} % a prediction is "not sure".')
    if found.created:
        lines.append(f"Saved {found.created}.")
    return "\n".join(lines)


def load_catalog(cancel: CancelToken = NEVER):
    """Job: every model with its figures and whether its weights are here, and the devices."""
    yield Progress(0, 2, "Loading the model list…", "steps")
    specs = registry.list_models()
    cancel.raise_if_cancelled()
    models = tuple(model_info(s) for s in specs)
    yield Progress(1, 2, "Looking for GPUs…", "steps")
    devices = tuple(list_devices())
    return Catalog(models, devices)
