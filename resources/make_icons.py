"""Render resources/icon.svg into every icon file the app and its packages use.

    QT_QPA_PLATFORM=offscreen .venv/bin/python resources/make_icons.py   (or: make icons)

Writes
    resources/icons/icon-{16,32,48,64,128,256,512,1024}.png
    resources/icons/effnet-app.ico    (Windows: 16..256, each size rendered, not scaled)
    resources/icons/effnet-app.icns   (macOS: 16..1024)
    effnet_app/assets/icon-{16..512}.png   (what gui.app.app_icon() loads at run time)

Qt's QSvgRenderer draws the SVG at each size (vector, so small sizes stay sharp); Pillow
writes the files without timestamps or other metadata, so the output is byte-for-byte the
same on every run and a file is only rewritten when its bytes change.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QRectF, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "resources" / "icon.svg"
OUT_DIR = ROOT / "resources" / "icons"
ASSETS_DIR = ROOT / "effnet_app" / "assets"

PNG_SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)
ASSET_SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)
BASENAME = "effnet-app"


def render(renderer: QSvgRenderer, size: int) -> Image.Image:
    """The SVG drawn at size x size pixels, as a straight-alpha RGBA Pillow image."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    data = bytes(rgba.constBits())[: rgba.bytesPerLine() * size]
    return Image.frombuffer("RGBA", (size, size), data, "raw", "RGBA", rgba.bytesPerLine(), 1)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(MASTER))
    if not renderer.isValid():
        print(f"make_icons: cannot read {MASTER}", file=sys.stderr)
        return 1

    sizes = sorted(set(PNG_SIZES) | set(ICO_SIZES) | set(ICNS_SIZES))
    images = {size: render(renderer, size) for size in sizes}
    outputs: dict[Path, bytes] = {}
    for size in PNG_SIZES:
        png = encode(images[size], "PNG", optimize=True)
        outputs[OUT_DIR / f"icon-{size}.png"] = png
        if size in ASSET_SIZES:
            outputs[ASSETS_DIR / f"icon-{size}.png"] = png

    largest_ico = max(ICO_SIZES)
    outputs[OUT_DIR / f"{BASENAME}.ico"] = encode(
        images[largest_ico],
        "ICO",
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=[images[s] for s in ICO_SIZES if s != largest_ico],
    )
    largest_icns = max(ICNS_SIZES)
    outputs[OUT_DIR / f"{BASENAME}.icns"] = encode(
        images[largest_icns],
        "ICNS",
        append_images=[images[s] for s in ICNS_SIZES if s != largest_icns],
    )

    changed = [path for path, data in outputs.items() if write_if_changed(path, data)]
    for path in outputs:
        state = "wrote" if path in changed else "same "
        print(f"{state} {path.relative_to(ROOT)}")
    print(f"make_icons: {len(changed)} of {len(outputs)} files changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
