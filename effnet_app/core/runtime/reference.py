"""Reference inputs: real photos the app ships, to check one runtime against another.

An export, or a faster precision, is only used after it gives PyTorch fp32's answers on
these. Eight public-domain and CC0 photos ship in ``effnet_app/assets/reference``
(``LICENSES.md`` there names each one's source and licence); each is used whole and in
twelve crops (three scales, four corners) and all of those mirrored, 208 inputs in all.
Different crops of one photo move the model's answer more than runtime rounding does,
so agreement on them says more than agreement on eight photos would. The order is
fixed and interleaved (every photo whole, then every photo mirrored, then the first
crop of each...), so the first N inputs of ``reference_batch(limit=N)`` cover as many
photos as N allows. Torch-free unless ``wants="torch"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from itertools import islice

import numpy as np
from PIL import Image, ImageOps

SCALES = (0.85, 0.7, 0.55)  # the crop's side, as a share of the photo's
CORNERS = ("tl", "tr", "bl", "br")


def photo_names() -> list[str]:
    """The shipped photos' file stems, sorted."""
    folder = resources.files("effnet_app.assets").joinpath("reference")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".jpg"))


def reference_photos() -> list[tuple[str, Image.Image]]:
    """The shipped photos, decoded as RGB: (stem, image)."""
    folder = resources.files("effnet_app.assets").joinpath("reference")
    out = []
    for name in photo_names():
        with folder.joinpath(f"{name}.jpg").open("rb") as stream, Image.open(stream) as image:
            out.append((name, image.convert("RGB")))
    return out


def _crop(image: Image.Image, scale: float, corner: str) -> Image.Image:
    width, height = image.size
    w, h = round(width * scale), round(height * scale)
    left = 0 if corner[1] == "l" else width - w
    top = 0 if corner[0] == "t" else height - h
    return image.crop((left, top, left + w, top + h))


def _variants():
    """(suffix, scale, corner) of each view of a photo: whole first, then the crops."""
    yield "", 1.0, ""
    for scale in SCALES:
        for corner in CORNERS:
            yield f"@{scale:.2f}-{corner}", scale, corner


def _ordered() -> Iterator[tuple[str, Image.Image]]:
    photos = reference_photos()
    for suffix, scale, corner in _variants():
        views = [(name, _crop(image, scale, corner) if corner else image) for name, image in photos]
        yield from ((f"{name}{suffix}", view) for name, view in views)
        yield from ((f"{name}{suffix}-mirror", ImageOps.mirror(view)) for name, view in views)


def reference_images() -> list[tuple[str, Image.Image]]:
    """Every reference input as (name, RGB image), in the fixed interleaved order.

    Names are "<photo>", "<photo>-mirror", "<photo>@0.85-tl", "<photo>@0.85-tl-mirror"...
    """
    return list(_ordered())


def reference_batch(preprocess, limit: int | None = None, wants: str = "numpy"):
    """The first ``limit`` (default: all) reference inputs through ``preprocess``.

    A float32 array (N, 3, crop, crop) made with ``preprocess.apply_numpy`` (Pillow and
    NumPy), or with ``wants="torch"`` a tensor made with ``preprocess.apply``.
    """
    if wants not in ("numpy", "torch"):
        raise ValueError(f'wants must be "numpy" or "torch", not {wants!r}')
    count = len(photo_names()) * (1 + len(SCALES) * len(CORNERS)) * 2
    count = count if limit is None else max(0, min(limit, count))
    crop = preprocess.crop_size
    out = np.empty((count, 3, crop, crop), dtype=np.float32)
    for row, (_, image) in enumerate(islice(_ordered(), count)):
        out[row] = preprocess.apply_numpy(image) if wants == "numpy" else preprocess.apply(image)
    if wants == "torch":
        import torch

        return torch.from_numpy(out)
    return out
