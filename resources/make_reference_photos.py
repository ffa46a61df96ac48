"""Make the reference photos the app ships, from scikit-image's bundled sample data.

    .venv/bin/python resources/make_reference_photos.py

Writes effnet_app/assets/reference/<name>.jpg: each photo resized so its long side is
at most 400 px (Pillow's LANCZOS), as RGB (grey photos too), baseline JPEG quality 90
without EXIF or other metadata. Only photos whose scikit-image docstring states public
domain or CC0 are used; effnet_app/assets/reference/LICENSES.md says which statement
each one carries. The same scikit-image and Pillow versions give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "effnet_app" / "assets" / "reference"
LONG_SIDE = 400
QUALITY = 90

# skimage.data name -> file name; each docstring (skimage/data/_fetchers.py) states
# public domain or CC0 for the photo.
PHOTOS = {
    "astronaut": "astronaut",
    "coffee": "coffee",
    "chelsea": "chelsea",
    "rocket": "rocket",
    "hubble_deep_field": "hubble_deep_field",
    "retina": "retina",
    "camera": "camera",
    "clock": "clock",
}


def make(name: str) -> Image.Image:
    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    scale = LONG_SIDE / max(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, stem in PHOTOS.items():
        path = OUT_DIR / f"{stem}.jpg"
        make(name).save(path, "JPEG", quality=QUALITY, optimize=True)
        total += path.stat().st_size
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1024:.0f} KB")
    print(f"{len(PHOTOS)} photos, {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
