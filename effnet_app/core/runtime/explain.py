"""Grad-CAM: which part of a photo made the network choose a class.

``grad_cam`` weighs the channels of the last feature map (``model.features[-1]``'s
output) by the gradient of the class score and maps the result back through the
preprocessing onto the original image. ``overlay`` paints it over the photo and
``explain_job`` is the cancellable job the GUI's preview panel runs.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data import images
from ..errors import AppError, ModelError
from ..jobs import NEVER, CancelToken, Progress


@dataclass(frozen=True)
class Heatmap:
    """Where the evidence for one class lies, on the original image's pixel grid.

    ``values`` is float32 with shape (height, width) of the image it was computed
    for, in [0, 1]; pixels outside the network's centre crop are 0.
    """

    values: np.ndarray
    class_index: int
    label: str
    probability: float

    @property
    def peak(self) -> tuple[int, int]:
        """(x, y) of the hottest pixel."""
        row, col = np.unravel_index(int(np.argmax(self.values)), self.values.shape)
        return int(col), int(row)


# --------------------------------------------------------------------------- Grad-CAM


def grad_cam(
    model, spec, image: Image.Image, class_index: int | None = None, device: str = "cpu"
) -> Heatmap:
    """Grad-CAM on ``model.features[-1]`` for ``class_index`` (the top-1 class if None)."""
    import torch

    x = spec.preprocess.apply(image.convert("RGB")).unsqueeze(0)
    x = x.to(device, memory_format=torch.channels_last)
    fmap, logits, index = _scores(model, x, class_index, spec.num_classes)
    cam = _weighted_map(fmap, logits, index)
    probability = float(torch.softmax(logits.detach().float(), dim=1)[0, index])
    values = _to_image_grid(cam, image.size, spec.preprocess)
    return Heatmap(values, index, spec.categories[index], probability)


def _scores(model, x, class_index: int | None, num_classes: int):
    """(feature map as a grad leaf, logits with a graph back to it, chosen class).

    Why a split forward instead of hooks: only d(score)/d(feature map) is needed, so
    the feature extractor runs without a graph and its output becomes the leaf. No
    parameter's ``requires_grad`` is touched, no hook is registered on a module the GUI
    may be running in another thread, and ``torch.autograd.grad`` (not ``backward``)
    leaves every ``p.grad`` alone. Grad mode is thread-local, so another thread's
    ``inference_mode`` neither affects nor is affected by this one.
    """
    import torch

    # A caller inside inference_mode would give us inference tensors, which can
    # never join a graph; leave it explicitly for this block.
    with torch.inference_mode(False), torch.no_grad():
        fmap = model.features(x)
    fmap = fmap.detach().requires_grad_(True)
    with torch.inference_mode(False), torch.enable_grad():
        pooled = torch.flatten(model.avgpool(fmap), 1)
        logits = model.classifier(pooled)
    if class_index is None:
        class_index = int(logits[0].argmax())
    if not 0 <= class_index < num_classes:
        raise ModelError(
            f"Class {class_index} does not exist: this model knows classes 0 to {num_classes - 1}."
        )
    return fmap, logits, int(class_index)


def _weighted_map(fmap, logits, index: int):
    """ReLU(sum_k alpha_k * A_k) with alpha_k the spatial mean of d score / d A_k: (h, w)."""
    import torch

    with torch.inference_mode(False), torch.enable_grad():
        (grads,) = torch.autograd.grad(logits[0, index], fmap)
    weights = grads[0].mean(dim=(1, 2))
    cam = torch.einsum("c,chw->hw", weights.float(), fmap.detach()[0].float())
    return torch.relu(cam).cpu()


def _crop_box(size: tuple[int, int], pre) -> tuple[float, float, float, float]:
    """The centre crop's (left, top, right, bottom) in original-image coordinates.

    Follows torchvision: the shorter side is resized to ``resize_size`` (the longer
    one truncated to int), then ``center_crop`` rounds its offset; a crop larger than
    the resized image is padded equally on both sides.
    """
    width, height = size
    short, long = min(width, height), max(width, height)
    new_long = int(pre.resize_size * long / short)
    resized_w, resized_h = (
        (pre.resize_size, new_long) if width <= height else (new_long, pre.resize_size)
    )

    def offset(side: int) -> int:
        if side >= pre.crop_size:
            return int(round((side - pre.crop_size) / 2.0))
        return -((pre.crop_size - side) // 2)

    sx, sy = width / resized_w, height / resized_h
    left, top = offset(resized_w) * sx, offset(resized_h) * sy
    return left, top, left + pre.crop_size * sx, top + pre.crop_size * sy


def _to_image_grid(cam, size: tuple[int, int], pre) -> np.ndarray:
    """Upsample the CAM onto its crop box in the original image, zero elsewhere, max 1."""
    import torch.nn.functional as F

    width, height = size
    left, top, right, bottom = (int(round(v)) for v in _crop_box(size, pre))
    box_w, box_h = max(1, right - left), max(1, bottom - top)
    up = F.interpolate(cam[None, None], size=(box_h, box_w), mode="bilinear", align_corners=False)
    up = up[0, 0].clamp_(min=0).numpy()
    values = np.zeros((height, width), dtype=np.float32)
    # Clip the box to the image (it only reaches outside when the crop was padded).
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if x1 > x0 and y1 > y0:
        values[y0:y1, x0:x1] = up[y0 - top : y1 - top, x0 - left : x1 - left]
    peak = float(values.max())
    if peak > 0 and np.isfinite(peak):
        values /= peak
    return values


# --------------------------------------------------------------------------- colours

# Dark blue -> cyan -> yellow -> red: brightness rises with heat, so the map still
# reads in greyscale, and cold areas stay dark enough not to hide the photo.
_ANCHORS = (
    (0.00, (20, 24, 110)),
    (0.35, (0, 190, 230)),
    (0.70, (250, 225, 40)),
    (1.00, (215, 30, 30)),
)


def _make_lut() -> np.ndarray:
    stops = np.array([a for a, _ in _ANCHORS])
    colours = np.array([c for _, c in _ANCHORS], dtype=np.float64)
    grid = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(grid, stops, colours[:, ch]) for ch in range(3)], axis=1)
    return np.rint(lut).astype(np.uint8)


COLOUR_MAP: np.ndarray = _make_lut()  # (256, 3) uint8


def colourise(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats (h, w) -> uint8 RGB (h, w, 3) through ``COLOUR_MAP``."""
    levels = np.rint(np.clip(np.nan_to_num(values), 0.0, 1.0) * 255).astype(np.intp)
    return COLOUR_MAP[levels]


def overlay(image: Image.Image, heatmap: Heatmap, opacity: float = 0.5) -> Image.Image:
    """The photo with the heatmap's colours blended in at ``opacity`` (0..1), as RGB.

    A heatmap made for a different size (e.g. a full decode shown as a smaller
    preview) is resized to the image first.
    """
    opacity = min(1.0, max(0.0, float(opacity)))
    base = image.convert("RGB")
    values = heatmap.values
    if values.shape != (base.height, base.width):
        resized = Image.fromarray(values.astype(np.float32), mode="F")
        values = np.asarray(resized.resize(base.size, Image.Resampling.BILINEAR))
    if opacity == 0.0:
        return base.copy() if base is image else base
    colours = colourise(values).astype(np.float32)
    pixels = np.asarray(base, dtype=np.float32)
    blended = (1.0 - opacity) * pixels + opacity * colours
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), mode="RGB")


# --------------------------------------------------------------------------- the job


def explain_job(
    classifier,
    path: str | os.PathLike,
    class_index: int | None = None,
    cancel: CancelToken = NEVER,
) -> Generator[Progress, None, Heatmap]:
    """Job: a Grad-CAM heatmap for one file, on the classifier's model and device."""
    from .. import native_libs

    native_libs.preload()  # a torch-free classifier's explanation loads torch now
    path = Path(path)
    cancel.raise_if_cancelled()
    if not classifier.loaded:
        yield from classifier.load(cancel)
    yield Progress(0, 2, f"Loading image {path.name}…", "steps")
    cancel.raise_if_cancelled()
    # Full decode: the heatmap is drawn over the whole photo, not the network's input.
    image = images.load_image(path)
    if isinstance(image, images.ImageProblem):
        raise AppError(f"Cannot explain {path.name}: {image.reason}.", image.detail)
    try:
        yield Progress(1, 2, "Computing heatmap…", "steps")
        cancel.raise_if_cancelled()
        heatmap = grad_cam(classifier.model, classifier.spec, image, class_index, classifier.device)
    finally:
        image.close()
    yield Progress(2, 2, f"Heatmap for {heatmap.label}", "steps")
    return heatmap
