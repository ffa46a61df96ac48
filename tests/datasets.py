"""Small labelled datasets for tests: real image files in class-per-folder trees."""

from __future__ import annotations

import random
from pathlib import Path

SHAPES = ("circle", "square", "triangle")


def make_shapes(
    root: str | Path,
    classes: tuple[str, ...] = SHAPES,
    per_class: int = 12,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """``root/<class>/<class>_NN.png``: coloured shapes on a plain background.

    Position, size and colours vary per image, drawn from ``seed``, so the same call
    writes the same bytes every time. Any class name other than a known shape is
    drawn as a star-like polygon with as many points as its index plus five.
    """
    from PIL import Image, ImageDraw

    root = Path(root)
    rng = random.Random(seed)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            background = tuple(rng.randrange(0, 90) for _ in range(3))
            colour = tuple(rng.randrange(120, 256) for _ in range(3))
            image = Image.new("RGB", (size, size), background)
            radius = rng.uniform(0.18, 0.4) * size
            cx, cy = (rng.uniform(radius, size - radius) for _ in range(2))
            _draw(ImageDraw.Draw(image), name, index, cx, cy, radius, colour)
            image.save(folder / f"{name}_{i:02d}.png")
    return root


def _draw(draw, name: str, index: int, cx: float, cy: float, r: float, colour) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if name == "circle":
        draw.ellipse(box, fill=colour)
    elif name == "square":
        draw.rectangle(box, fill=colour)
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        draw.regular_polygon((cx, cy, r), n_sides=5 + index, fill=colour)


def write_digits(root: str | Path, per_class: int | None = None, size: int = 32) -> Path:
    """scikit-learn's bundled 8x8 digits as ``root/0`` … ``root/9`` of RGB PNGs.

    Upscaled to ``size`` with nearest-neighbour; ``per_class`` keeps the first N images
    of each class (in the data set's order), so the files are the same on every run.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    root = Path(root)
    digits = load_digits()
    written: dict[int, int] = {}
    for pixels, target in zip(digits.images, digits.target, strict=True):
        label = int(target)
        count = written.get(label, 0)
        if per_class is not None and count >= per_class:
            continue
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = np.clip(pixels * (255 / 16), 0, 255).astype(np.uint8)  # values are 0..16
        image = Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST)
        image.convert("RGB").save(folder / f"{label}_{count:04d}.png")
        written[label] = count + 1
    return root
