"""Open any image safely with Pillow, as RGB (``folders.py`` finds the files).

A bad file is never an exception here: ``load_image`` returns an ``ImageProblem`` that
becomes a row in the results, so one damaged photo cannot abort a folder of thousands.
An image far larger than its target is shrunk strip by strip right after decoding, so
a 100-megapixel PNG costs its decoded pixels and little more.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError, features

from effnet_app.core.errors import sentence_of

log = logging.getLogger(__name__)

# Our own MAX_PIXELS check decides what is too large; Pillow's softer warning (from about
# 89 MP) would only print noise on the command line for images we accept on purpose.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# Pillow allocates an image in blocks of 16 MB. glibc serves requests of that size from
# per-thread arenas that keep the memory after it is freed, so eight decode threads left
# up to eight huge images resident (3 GB after a folder of 100-megapixel PNGs). Blocks
# of 64 MB lie above glibc's largest mmap threshold (32 MB): they come from the system
# and go back to it when freed. A PILLOW_BLOCK_SIZE the user set wins.
if "PILLOW_BLOCK_SIZE" not in os.environ:
    Image.core.set_block_size(max(Image.core.get_block_size(), 64 * 1024 * 1024))

_COMMON_EXTENSIONS = set(
    ".jpg .jpeg .jpe .jfif .png .apng .bmp .dib .gif .tif .tiff .webp"
    " .ppm .pgm .pbm .pnm .tga .ico .pcx .qoi .jp2 .j2k .jpx .mpo".split()
)
# AVIF is only readable when this Pillow build has the plugin (11.2+ wheels); listing it
# otherwise would make folders full of rows that all say "not an image".
_AVIF_EXTENSIONS = {".avif", ".avifs"}
_HAS_AVIF = "avif" in features.modules and bool(features.check_module("avif"))

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    _COMMON_EXTENSIONS | (_AVIF_EXTENSIONS if _HAS_AVIF else set())
)

# Formats people drop that Pillow cannot read without plugins: name them instead of
# calling a perfectly good iPhone photo "not an image".
_KNOWN_UNREADABLE = {
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".svg": "SVG",
    ".dng": "DNG raw",
    ".cr2": "Canon raw",
    ".cr3": "Canon raw",
    ".nef": "Nikon raw",
    ".arw": "Sony raw",
    ".raf": "Fujifilm raw",
    ".orf": "Olympus raw",
    ".rw2": "Panasonic raw",
    ".psb": "Photoshop large document",
}
_KNOWN_UNREADABLE.update({ext: "AVIF" for ext in _AVIF_EXTENSIONS - IMAGE_EXTENSIONS})

# Our own limit, checked against the header before any pixel is decoded. Pillow's global
# Image.MAX_IMAGE_PIXELS (about 89 MP warns, 179 MP raises) stays untouched because other
# code shares it; whichever limit is lower wins.
MAX_PIXELS: int = 100_000_000

# Transparent areas are filled with mid grey: it carries no hue and sits close to the
# per-channel mean that classifiers normalise by, so a cut-out object on "nothing" looks
# like an object on a plain background rather than on white (studio product shot) or
# black (night). The exact mean belongs to zoo.py (per model), hence a neutral constant.
BACKGROUND: tuple[int, int, int] = (128, 128, 128)

_HIGH_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}

# An image of at least this many pixels, and at least twice its target on both sides,
# is shrunk by whole factors (box averaging, as JPEG draft decoding does) before its
# colour conversion, which would otherwise make several full-size copies. Smaller
# images decode exactly as they always have.
EARLY_SHRINK_PIXELS = 16_000_000
_STRIP_PIXELS = 1_000_000  # converted at once while shrinking: bounds the extra memory
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Reserve = Callable[[int], None]  # told the pixels about to be decoded; may wait


@dataclass(frozen=True)
class ImageProblem:
    """Why one file could not be used: ``reason`` is a short phrase for the results table."""

    path: Path
    reason: str
    detail: str = field(default="", compare=False)  # technical text for the log

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


def describe(problem_or_exc: ImageProblem | BaseException) -> str:
    """One sentence for a person, whether we got a problem row or an exception."""
    if isinstance(problem_or_exc, ImageProblem):
        return str(problem_or_exc)
    return sentence_of(problem_or_exc)


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether a folder walk would pick this file up (by extension, any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _megapixels(pixels: int) -> str:
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 100 else f"{mp:.3g}"


def _too_large(path: Path, pixels: int, limit: int, detail: str = "") -> ImageProblem:
    reason = f"too large: {_megapixels(pixels)} megapixels (limit {_megapixels(limit)})"
    return ImageProblem(path, reason, detail)


# ---------------------------------------------------------------------------------------
# Loading


def load_image(
    path: str | os.PathLike,
    target_size: int | None = None,
    max_pixels: int = MAX_PIXELS,
    reserve: Reserve | None = None,
) -> Image.Image | ImageProblem:
    """Open anything Pillow opens as an upright RGB image, or say why not. Never raises.

    ``target_size`` is the shorter side the caller will resize to: a JPEG is then decoded
    straight at the smallest DCT scale (1/2, 1/4, 1/8) whose sides all stay >= it, which
    is several times faster for camera photos and loses nothing the resize keeps; any
    image of ``EARLY_SHRINK_PIXELS`` or more is shrunk to no less than it likewise.
    ``reserve``, when given, is called with the number of pixels about to be decoded
    (read from the header, after draft scaling) just before decoding starts, so a
    caller can hold back until memory is free; it is not called for refused files.
    The result is a complete in-memory image; its file is already closed.
    """
    box = (target_size, target_size) if target_size else None
    return _load(Path(path), lambda _size: box, max_pixels, reserve)


def make_thumbnail(
    path: str | os.PathLike, size: int, max_pixels: int = MAX_PIXELS
) -> Image.Image | ImageProblem:
    """An RGB image that fits in ``size`` x ``size``, for the results table."""
    image = _load(Path(path), lambda full: _fit_box(full, size), max_pixels)
    if isinstance(image, Image.Image):
        image.thumbnail((size, size))
    return image


def _fit_box(full: tuple[int, int], size: int) -> tuple[int, int]:
    # Only the longer side has to reach `size` for a thumbnail, so the DCT scale may be
    # smaller than for classification. Rotation swaps sides but not which one is longer.
    width, height = full
    longest = max(width, height, 1)
    return max(1, width * size // longest), max(1, height * size // longest)


def _load(
    path: Path, draft_box, max_pixels: int, reserve: Reserve | None = None
) -> Image.Image | ImageProblem:
    problem = _check_file(path)
    if problem is not None:
        return problem
    fmt = "image"
    try:
        # We open the file ourselves so it is closed on every path, including the ones
        # where Pillow gives up half-way; thousands of files must not leak handles.
        with open(path, "rb") as fp, Image.open(fp) as img:
            fmt = img.format or fmt
            if img.width * img.height > max_pixels:
                return _too_large(path, img.width * img.height, max_pixels)
            box = draft_box(img.size)
            if box:
                img.draft(img.mode, box)  # a no-op for every format but JPEG
            if reserve is not None:
                reserve(img.width * img.height)
            img.load()
            factor = _shrink_factor(img, box)
            if factor > 1:
                return _shrunk_rgb(img, factor)
            rgb = _to_rgb(_upright(img))
            if rgb is img and getattr(img, "n_frames", 1) > 1:
                # A multi-frame image still refers to the file we are about to close;
                # a copy stands alone. A single loaded frame is already complete, so it
                # goes back as is: the copy would add a third to a full-size decode.
                return img.copy()
            return rgb
    except Exception as exc:  # whatever a decoder raises is about this file, not us
        return _problem_from(path, exc, fmt, max_pixels)


def _shrink_factor(img: Image.Image, box: tuple[int, int] | None) -> int:
    """The whole factor a decoded image may shrink by and still cover ``box``; 1 for most."""
    if not box or img.width * img.height < EARLY_SHRINK_PIXELS or img.mode in _HIGH_BIT_MODES:
        return 1  # high-bit modes stretch by their own range, which strips would not share
    factor = min(img.width // max(1, box[0]), img.height // max(1, box[1]))
    return factor if factor >= 2 else 1


def _shrunk_rgb(img: Image.Image, factor: int) -> Image.Image:
    """Upright RGB at 1/factor of the size, converted a strip of rows at a time.

    Strips are whole multiples of ``factor`` rows, so every averaging box lies in one
    strip and the result is the one a single ``reduce`` of the whole would give;
    compositing before averaging equals averaging premultiplied colours.
    """
    width, height = img.size
    rows = max(1, _STRIP_PIXELS // (width * factor)) * factor
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        strip = _to_rgb(img.crop((0, top, width, min(height, top + rows))))
        out.paste(strip.reduce(factor), (0, top // factor))
    method = _TRANSPOSE.get(_orientation(img))
    return out.transpose(method) if method is not None else out


def _check_file(path: Path) -> ImageProblem | None:
    """Cheap checks before opening: gives clear reasons and never blocks on a FIFO."""
    try:
        info = path.stat()
    except OSError as exc:
        return _problem_from(path, exc, "image", MAX_PIXELS)
    except ValueError as exc:  # e.g. a NUL byte pasted into a file name
        return ImageProblem(path, "invalid file name", str(exc))
    if stat.S_ISDIR(info.st_mode):
        return ImageProblem(path, "is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        return ImageProblem(path, "not a regular file")
    if info.st_size == 0:
        return ImageProblem(path, "empty file")
    return None


def _problem_from(path: Path, exc: BaseException, fmt: str, limit: int) -> ImageProblem:
    """Turn whatever went wrong into a phrase a person understands."""
    detail = f"{type(exc).__name__}: {exc}"
    log.debug("cannot load %s: %s", path, detail)
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        # Pillow's own limit fired first; its message holds the declared pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        if found:
            return _too_large(path, int(found.group(1)), limit, detail)
        return ImageProblem(path, "too large (possible decompression bomb)", detail)
    if isinstance(exc, UnidentifiedImageError):
        kind = _KNOWN_UNREADABLE.get(path.suffix.lower())
        reason = f"unsupported format ({kind})" if kind else "not an image"
        return ImageProblem(path, reason, detail)
    if isinstance(exc, MemoryError):
        return ImageProblem(path, "too large to decode (out of memory)", detail)
    reason = _os_reason(exc) or f"truncated or damaged {fmt}"
    return ImageProblem(path, reason, detail)


def _os_reason(exc: BaseException) -> str | None:
    # Only errors from the operating system carry an errno; a decoder's OSError
    # ("image file is truncated") has none and means damaged data.
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    return f"could not be read ({exc.strerror or errno.errorcode.get(exc.errno, exc.errno)})"


_EXIF_ERRORS = (SyntaxError, ValueError, TypeError, KeyError, struct.error, OSError)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 to 8, 1 = upright); a broken EXIF block counts as upright."""
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except _EXIF_ERRORS as exc:
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return 1
    return value if value in range(2, 9) else 1


def _upright(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation; a broken EXIF block only costs the rotation."""
    # Most photos are upright already: asking first spares a full-size copy.
    if _orientation(img) == 1:
        return img
    try:
        return ImageOps.exif_transpose(img)
    except _EXIF_ERRORS as exc:
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return img


# ---------------------------------------------------------------------------------------
# Colour modes


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB, transparency laid over BACKGROUND."""
    if img.mode in _HIGH_BIT_MODES:
        img = _high_bit_to_l(img)
    if img.mode == "La":
        img = img.convert("LA")  # Pillow has no direct La -> RGBA path
    has_alpha = img.mode in {"RGBA", "RGBa", "LA", "PA"} or "transparency" in img.info
    if has_alpha:
        return _composite(img.convert("RGBA"))
    if img.mode == "RGB":
        return img  # convert() would copy it for nothing
    return img.convert("RGB")  # CMYK (Adobe-inverted handled by the decoder), P, L, 1, ...


def _composite(rgba: Image.Image) -> Image.Image:
    out = Image.new("RGB", rgba.size, BACKGROUND)
    out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
    return out


def _high_bit_to_l(img: Image.Image) -> Image.Image:
    """Scale 16/32-bit and float greyscale into 0..255; Pillow's convert("L") clips."""
    import numpy as np  # only for these rare modes; keeps importing this module light

    values = np.asarray(img).astype(np.float32)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if img.mode.startswith("I;16"):
        scaled = values / 257.0  # the format's own range: 65535 -> 255, 32768 -> 128
    elif img.mode == "I" and low >= 0 and high <= 255:
        scaled = values  # 8-bit data held in a 32-bit container
    elif img.mode == "I" and low >= 0 and high <= 65535:
        scaled = values / 257.0  # the usual case: a 16-bit file opened as "I"
    elif img.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0  # floats in the conventional 0..1 range
    else:
        # No nominal range to trust (signed, 32-bit, HDR floats): stretch what is there.
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
