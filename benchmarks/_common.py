"""Shared set-up for the benchmarks: work folders and test images made from real photos."""

from __future__ import annotations

from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work"  # git-ignored


def real_photo(name: str = "coffee"):
    from PIL import Image
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def make_jpegs(folder: Path, count: int, size: tuple[int, int], quality: int = 90) -> list[Path]:
    """``count`` JPEGs of ``size`` made from real photos, each slightly different."""
    from PIL import ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    names = ("coffee", "chelsea", "astronaut", "rocket")
    bases = [real_photo(n).resize(size) for n in names]
    out = []
    for i in range(count):
        path = folder / f"img_{i:05d}.jpg"
        if not path.exists():
            image = bases[i % len(bases)]
            if (i // len(bases)) % 2:
                image = ImageOps.mirror(image)
            image.save(path, quality=quality - (i % 7))
        out.append(path)
    return out


def random_weights(spec, folder: Path) -> Path:
    """A state dict of a randomly initialised network, for timing the architecture only."""
    import torch

    path = folder / f"random-{spec.key}.pth"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(spec.build().state_dict(), path)
    return path


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6
