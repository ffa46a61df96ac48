"""images.py and folders.py: odd files and folders, each with the outcome a person should see."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from effnet_app.core.data import images
from effnet_app.core.data.folders import expand_paths, natural_key
from effnet_app.core.data.images import (
    BACKGROUND,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageProblem,
    describe,
    load_image,
    make_thumbnail,
)
from effnet_app.core.jobs import Cancelled, CancelToken

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def assert_close(pixel, expected, tolerance=12):
    assert all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True)), (
        f"{pixel} is not close to {expected}"
    )


def loaded(path, **kwargs) -> Image.Image:
    image = load_image(path, **kwargs)
    assert isinstance(image, Image.Image), f"expected an image, got {image}"
    assert image.mode == "RGB"
    return image


def problem_of(path, **kwargs) -> ImageProblem:
    result = load_image(path, **kwargs)
    assert isinstance(result, ImageProblem), f"expected a problem, got {result}"
    assert result.path == Path(path)
    return result


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares a size but holds no pixels: only the header can be read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> Path:
    """A 12-megapixel camera-sized photo (skimage coffee, upscaled)."""
    from skimage import data

    path = tmp_path_factory.mktemp("big") / "coffee_12mp.jpg"
    photo = Image.fromarray(data.coffee()).resize((4032, 3024), Image.Resampling.BILINEAR)
    photo.save(path, quality=90)
    return path


# ---------------------------------------------------------------------------------------
# Colour modes


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [((0, 255, 255, 0), RED), ((255, 255, 0, 0), BLUE), ((0, 0, 0, 255), (0, 0, 0))],
)
def test_cmyk_jpeg_keeps_its_colour(tmp_path, cmyk, rgb):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), cmyk).save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    assert_close(loaded(path).getpixel((16, 16)), rgb)


def _marked_jpeg(path: Path, orientation: int) -> Path:
    image = Image.new("RGB", (60, 40), BLUE)
    image.paste(RED, (0, 0, 12, 12))  # mark the stored top-left corner
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    image.save(path, quality=95, exif=exif)
    return path


@pytest.mark.parametrize(
    ("orientation", "size", "red_at"),
    [
        (1, (60, 40), (5, 5)),  # upright: stays top-left
        (3, (60, 40), (54, 34)),  # upside down: bottom-right
        (6, (40, 60), (34, 5)),  # stored row 0 is the visual right side: top-right
        (8, (40, 60), (5, 54)),  # stored row 0 is the visual left side: bottom-left
    ],
)
def test_exif_orientation_is_applied(tmp_path, orientation, size, red_at):
    image = loaded(_marked_jpeg(tmp_path / "rotated.jpg", orientation))
    assert image.size == size
    assert_close(image.getpixel(red_at), RED, 40)
    width, height = size
    corners = {(5, 5), (width - 6, 5), (5, height - 6), (width - 6, height - 6)}
    for corner in corners - {red_at}:
        assert_close(image.getpixel(corner), BLUE, 40)


def _grey_row(image: Image.Image) -> list[int]:
    pixels = [image.getpixel((x, 0)) for x in range(image.width)]
    assert all(r == g == b for r, g, b in pixels)
    return [r for r, _, _ in pixels]


LEVELS_16 = np.array([[0, 1000, 32768, 65535]] * 4, dtype=np.uint16)
EXPECTED_8 = [0, 4, 128, 255]  # scaled by 255/65535, not clipped at 255


@pytest.mark.parametrize(
    ("name", "array", "mode"),
    [
        ("png16.png", LEVELS_16, "I;16"),
        ("big_endian.tif", LEVELS_16.astype(">u2"), "I;16B"),
        ("int32.tif", LEVELS_16.astype(np.int32), "I"),
        ("float.tif", LEVELS_16.astype(np.float32) / 65535, "F"),
    ],
)
def test_high_bit_depth_keeps_its_range(tmp_path, name, array, mode):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    with Image.open(path) as check:
        assert check.mode == mode
    assert _grey_row(loaded(path)) == EXPECTED_8


def test_palette_transparency_becomes_background(tmp_path):
    image = Image.new("P", (4, 2), 1)
    image.putpalette([*RED, *GREEN] + [0] * 762)
    image.paste(0, (0, 0, 2, 2))  # left half: index 0, the transparent one
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    result = loaded(path)
    assert result.getpixel((0, 0)) == BACKGROUND
    assert result.getpixel((3, 1)) == GREEN


def test_partial_palette_alpha_is_blended(tmp_path):
    image = Image.new("P", (2, 2), 0)
    image.putpalette([*RED] + [0] * 765)
    path = tmp_path / "half.png"
    image.save(path, transparency=bytes([128]))
    half = 128 / 255
    expected = tuple(round(c * half + b * (1 - half)) for c, b in zip(RED, BACKGROUND, strict=True))
    assert_close(loaded(path).getpixel((0, 0)), expected, 2)


@pytest.mark.parametrize(
    ("mode", "pixels", "expected"),
    [
        ("RGBA", [(*RED, 0), (*BLUE, 255)], [BACKGROUND, BLUE]),
        ("LA", [(200, 0), (200, 255)], [BACKGROUND, (200, 200, 200)]),
        ("L", [77, 200], [(77, 77, 77), (200, 200, 200)]),
        ("1", [0, 1], [(0, 0, 0), (255, 255, 255)]),
    ],
)
def test_alpha_and_grey_modes(tmp_path, mode, pixels, expected):
    image = Image.new(mode, (2, 1))
    for x, value in enumerate(pixels):
        image.putpixel((x, 0), value)
    path = tmp_path / f"{mode}.png"
    image.save(path)
    result = loaded(path)
    assert [result.getpixel((x, 0)) for x in range(2)] == expected


def test_grey_png_with_transparent_value(tmp_path):
    image = Image.new("L", (2, 1), 0)
    image.putpixel((1, 0), 90)
    path = tmp_path / "grey_trns.png"
    image.save(path, transparency=0)
    result = loaded(path)
    assert result.getpixel((0, 0)) == BACKGROUND
    assert result.getpixel((1, 0)) == (90, 90, 90)


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    assert loaded(path).getpixel((8, 8)) == RED


# ---------------------------------------------------------------------------------------
# Problems are data


def test_truncated_jpeg(tmp_path, sample_photos):
    data = sample_photos["chelsea"].read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    reason = problem_of(path).reason
    assert "truncated" in reason or "damaged" in reason
    assert "JPEG" in reason


def test_empty_text_missing_and_folder(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.touch()
    text = tmp_path / "notes.jpg"
    text.write_text("this is text, not a JPEG")
    heic = tmp_path / "phone.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 32)
    assert problem_of(empty).reason == "empty file"
    assert problem_of(text).reason == "not an image"
    assert problem_of(heic).reason == "unsupported format (HEIC)"
    assert problem_of(tmp_path / "gone.png").reason == "file not found"
    assert problem_of(tmp_path).reason == "is a folder, not a file"


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX permissions, not root"
)
def test_permission_denied(tmp_path):
    path = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    try:
        assert problem_of(path).reason == "permission denied"
    finally:
        path.chmod(0o644)


def test_huge_declared_size_is_refused_by_pillows_own_guard(tmp_path):
    pillow_limit = Image.MAX_IMAGE_PIXELS
    path = png_header_only(tmp_path / "bomb.png", 20_000, 20_000)
    assert problem_of(path).reason == "too large: 400 megapixels (limit 100)"
    assert Image.MAX_IMAGE_PIXELS == pillow_limit  # shared global left alone


def test_our_limit_is_checked_from_the_header_before_decoding(tmp_path):
    # 110 MP: past Pillow's warning but under its error; no pixel data to decode, so
    # "too large" (not "damaged") proves the header check came first.
    path = png_header_only(tmp_path / "wide.png", 11_000, 10_000)
    with pytest.warns(Image.DecompressionBombWarning):
        reason = problem_of(path).reason
    assert reason == f"too large: 110 megapixels (limit {MAX_PIXELS // 1_000_000})"


def test_small_real_image_over_a_low_limit(sample_photos):
    path = sample_photos["camera"]  # 512 x 512
    assert problem_of(path, max_pixels=100_000).reason == (
        "too large: 0.262 megapixels (limit 0.1)"
    )
    assert loaded(path, max_pixels=512 * 512).size == (512, 512)


def test_describe_problem_and_exception(tmp_path):
    problem = problem_of(tmp_path / "gone.png")
    assert describe(problem) == "gone.png: file not found"
    assert "ValueError" in describe(ValueError("boom"))


# ---------------------------------------------------------------------------------------
# Draft decoding and thumbnails


def test_draft_decodes_smaller_but_same_picture(big_jpeg):
    full = loaded(big_jpeg)
    small = loaded(big_jpeg, target_size=256)
    assert full.size == (4032, 3024)
    assert small.width < full.width and small.height < full.height
    assert min(small.size) >= 256
    reference = np.asarray(full.resize(small.size, Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(small, dtype=np.float32) - reference).mean() < 3.0


def test_draft_never_goes_below_the_target(big_jpeg):
    assert loaded(big_jpeg, target_size=2000).size == (4032, 3024)  # 1/2 would give 1512
    assert min(loaded(big_jpeg, target_size=1000).size) >= 1000


def test_orientation_is_applied_after_draft(tmp_path, big_jpeg):
    path = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    with Image.open(big_jpeg) as photo:
        photo.save(path, quality=85, exif=exif)
    image = loaded(path, target_size=256)
    assert image.height > image.width >= 256
    assert image.height < 3024


def test_thumbnail_fits_and_keeps_aspect(big_jpeg, tmp_path):
    thumb = make_thumbnail(big_jpeg, 128)
    assert isinstance(thumb, Image.Image) and thumb.mode == "RGB"
    assert thumb.size == (128, 96)
    assert make_thumbnail(tmp_path / "gone.jpg", 128) == ImageProblem(
        tmp_path / "gone.jpg", "file not found"
    )


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_loading_many_files_leaks_no_descriptors(tmp_path, sample_photos):
    Image.new("RGBA", (20, 20), (*RED, 128)).save(tmp_path / "a.png")
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, GREEN)]
    frames[0].save(tmp_path / "b.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "c.jpg").write_bytes(sample_photos["astronaut"].read_bytes()[:5000])
    (tmp_path / "d.jpg").write_text("text")
    png_header_only(tmp_path / "e.png", 20_000, 20_000)
    files = [*sorted(tmp_path.iterdir()), sample_photos["coffee"], tmp_path / "missing.jpg"]
    before = len(os.listdir("/proc/self/fd"))
    for i in range(300):
        load_image(files[i % len(files)], target_size=64)
    for path in files:
        make_thumbnail(path, 32)
    assert len(os.listdir("/proc/self/fd")) <= before


# ---------------------------------------------------------------------------------------
# Huge images: shrunk right after decoding, and the decode announced first


@pytest.fixture
def early_shrink(monkeypatch) -> int:
    """A 2 MP threshold instead of 16, so "huge" images stay quick to make in tests."""
    monkeypatch.setattr(images, "EARLY_SHRINK_PIXELS", 2_000_000)
    return 2_000_000


@pytest.fixture(scope="module")
def huge_rgba(tmp_path_factory) -> Path:
    """A 2400 x 1800 RGBA PNG: a red disc on blue, its left half transparent."""
    from PIL import ImageDraw

    image = Image.new("RGBA", (2400, 1800), (*BLUE, 255))
    ImageDraw.Draw(image).ellipse((600, 300, 1800, 1500), fill=(*RED, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 1199, 1799), fill=(0, 0, 0, 0))
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    image.save(path, compress_level=1)
    return path


def test_a_huge_image_is_shrunk_to_no_less_than_the_target(huge_rgba, early_shrink):
    assert 2400 * 1800 >= early_shrink
    small = loaded(huge_rgba, target_size=179)
    assert small.size == (240, 180)  # shrunk by 10, the most that keeps 179
    full = loaded(huge_rgba)
    assert full.size == (2400, 1800)
    reference = np.asarray(full.resize(small.size, Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(small, dtype=np.float32) - reference).max() <= 1.0
    assert_close(small.getpixel((20, 20)), BACKGROUND, 0)  # transparent stays background
    assert_close(small.getpixel((165, 90)), RED, 0)
    assert_close(small.getpixel((235, 175)), BLUE, 0)


def test_a_huge_image_is_turned_upright_after_shrinking(tmp_path, huge_rgba, early_shrink):
    path = tmp_path / "turned.png"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotate 90 degrees clockwise to view
    with Image.open(huge_rgba) as image:
        image.save(path, compress_level=1, exif=exif)
    small = loaded(path, target_size=179)
    assert small.size == (180, 240)
    assert_close(small.getpixel((90, 20)), BACKGROUND, 0)  # the transparent left is on top
    assert_close(small.getpixel((5, 235)), BLUE, 0)


def test_images_below_the_threshold_decode_as_they_always_have(tmp_path, early_shrink):
    path = tmp_path / "screen.png"
    array = np.random.default_rng(0).integers(0, 256, (1000, 1900, 4), dtype=np.uint8)
    Image.fromarray(array, "RGBA").save(path, compress_level=1)
    with Image.open(path) as image:
        expected = Image.new("RGB", image.size, BACKGROUND)
        expected.paste(image.convert("RGB"), mask=image.getchannel("A"))
    assert 1900 * 1000 < early_shrink
    assert loaded(path, target_size=179).tobytes() == expected.tobytes()


def test_reserve_is_told_the_pixels_about_to_be_decoded(big_jpeg, tmp_path, sample_photos):
    told: list[int] = []
    image = loaded(big_jpeg, target_size=256, reserve=told.append)
    assert told == [image.width * image.height]  # the drafted size, not 12 MP
    assert told[0] < 4032 * 3024 // 4
    png_header_only(tmp_path / "wide.png", 2_000, 1_000)
    problem_of(tmp_path / "wide.png", max_pixels=1_000_000, reserve=told.append)
    problem_of(tmp_path / "gone.jpg", reserve=told.append)
    assert len(told) == 1  # refused from the header or the file system: nothing decoded


# ---------------------------------------------------------------------------------------
# Finding images


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")  # expand_paths goes by name; it never opens files
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "photos"
    for name in ("b.JPG", "a.Png", "img10.png", "img2.png", "notes.txt", ".hidden.jpg"):
        _touch(root / name)
    _touch(root / ".secret" / "x.jpg")
    _touch(root / "sub" / "c.jpeg")
    _touch(root / "sub" / "deeper" / "d.webp")
    return root


def test_expand_walks_in_natural_order_and_skips_hidden(tree):
    relative = [p.relative_to(tree).as_posix() for p in expand_paths([tree])]
    assert relative == [
        "a.Png",
        "b.JPG",
        "img2.png",
        "img10.png",
        "sub/c.jpeg",
        "sub/deeper/d.webp",
    ]
    assert expand_paths([str(tree)]) == expand_paths([tree])  # stable, str or Path


def test_expand_keeps_explicit_files_and_drops_duplicates(tree, tmp_path):
    explicit = [tree / "notes.txt", tmp_path / "missing.jpg", tree / ".hidden.jpg"]
    result = expand_paths([*explicit, tree, tree / "a.Png", tree / "sub"])
    assert result[:3] == explicit
    assert result.count(tree / "a.Png") == 1
    assert len(result) == 3 + 6


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_expand_survives_a_symlink_loop(tree):
    try:
        os.symlink(tree, tree / "sub" / "loop", target_is_directory=True)
    except OSError as exc:  # e.g. Windows without developer mode
        pytest.skip(f"cannot make symlinks here: {exc}")
    result = expand_paths([tree])
    assert len(result) == 6
    assert len({p.name for p in result}) == 6


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_broken_image_link_in_a_folder_is_a_row(tree):
    os.symlink(tree / "gone.jpg", tree / "sub" / "zz-dangling.jpg")
    result = expand_paths([tree])
    problems = [r for r in result if isinstance(r, ImageProblem)]
    assert [p.path.name for p in problems] == ["zz-dangling.jpg"]
    assert "broken link" in problems[0].reason
    assert len(result) == 6 + 1  # every other file is still found


def test_expand_stops_when_cancelled(tree):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        expand_paths([tree], cancel=token)


def test_extensions_and_natural_key():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    names = ["img10.png", "IMG2.png", "img1.png", "img02.png", "a.png"]
    assert sorted(names, key=natural_key) == [
        "a.png",
        "img1.png",
        "IMG2.png",
        "img02.png",
        "img10.png",
    ]


def test_multi_frame_rgb_comes_back_detached(tmp_path):
    # An MPO (camera multi-picture JPEG) stays RGB, so it is the one case where the
    # decoded frame itself would be handed back: it must not depend on the closed file.
    path = tmp_path / "stereo.mpo"
    left, right = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    left.save(path, save_all=True, append_images=[right])
    with Image.open(path) as check:
        assert check.n_frames == 2
    image = loaded(path)
    assert getattr(image, "n_frames", 1) == 1
    assert_close(image.getpixel((8, 8)), RED)


def _unreadable(monkeypatch, folder: Path, error: OSError) -> None:
    """Make listing ``folder`` fail as it would without permission (tests run as root)."""
    real = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise error
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_folder_is_a_problem_in_its_place(tree, monkeypatch):
    _unreadable(monkeypatch, tree / "sub", PermissionError(13, "Permission denied"))
    result = expand_paths([tree])
    names = [p.path.name if isinstance(p, ImageProblem) else p.name for p in result]
    assert names == ["a.Png", "b.JPG", "img2.png", "img10.png", "sub"]
    problem = result[-1]
    assert isinstance(problem, ImageProblem) and problem.path == tree / "sub"
    assert problem.reason == "folder could not be read (permission denied)"
    assert "Permission denied" in problem.detail


def test_a_given_folder_that_cannot_be_read_is_one_problem(tree, monkeypatch):
    _unreadable(monkeypatch, tree, OSError(5, "Input/output error"))
    assert expand_paths([tree, tree / "a.Png"]) == [
        ImageProblem(tree, "folder could not be read (Input/output error)"),
        tree / "a.Png",
    ]


def test_a_folder_that_vanishes_while_walking_is_a_problem(tree, monkeypatch):
    real = os.scandir

    def scandir(path="."):
        if Path(path) == tree / "sub":
            (tree / "sub" / "c.jpeg").unlink()
            (tree / "sub" / "deeper" / "d.webp").unlink()
            (tree / "sub" / "deeper").rmdir()
            (tree / "sub").rmdir()
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = expand_paths([tree])
    assert result[-1] == ImageProblem(
        tree / "sub", "folder could not be read (it no longer exists)"
    )
