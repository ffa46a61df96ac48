"""A model's preprocessing in Pillow and NumPy: what the torch-free backends read.

torchvision resizes a PIL image with Pillow's own ``Image.resize``, so the same output
size, the same filter and the same crop give the very same pixels; only the
normalisation rounds differently (one multiply and one subtract per value here), far
inside 1e-4 of ``Preprocess.apply``. The numbers themselves (sizes, mean, std) come from
the ``zoo.Preprocess`` passed in; none live here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """torchvision's ``_compute_resized_output_size`` for one size, as (width, height)."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shorter * long / short)
    return (shorter, new_long) if width <= height else (new_long, shorter)


def centre_crop(pixels: np.ndarray, crop: int) -> np.ndarray:
    """torchvision's ``center_crop`` on an (H, W[, C]) array: zero padding, same rounding."""
    height, width = pixels.shape[:2]
    if crop > width or crop > height:
        pad_w, pad_h = max(0, crop - width), max(0, crop - height)
        spec = [(pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2)]
        pixels = np.pad(pixels, spec + [(0, 0)] * (pixels.ndim - 2))
        height, width = pixels.shape[:2]
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return pixels[top : top + crop, left : left + crop]


def preprocess_numpy(preprocess, image: Image.Image) -> np.ndarray:
    """PIL RGB image -> normalised float32 (3, crop, crop), C-contiguous."""
    width, height = image.size
    size = resized_size(width, height, preprocess.resize_size)
    if size != (width, height):  # torchvision hands back an image of the right size as it is
        image = image.resize(size, _FILTERS[preprocess.interpolation])
    pixels = centre_crop(np.asarray(image), preprocess.crop_size)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    std = np.asarray(preprocess.std, dtype=np.float32)
    scale = (1.0 / (255.0 * std)).astype(np.float32)[:, None, None]
    offset = (np.asarray(preprocess.mean, dtype=np.float32) / std)[:, None, None]
    crop = preprocess.crop_size
    out = np.empty((pixels.shape[2], crop, crop), dtype=np.float32)
    np.multiply(pixels.transpose(2, 0, 1), scale, out=out)  # the layout change is this one copy
    out -= offset
    return out
