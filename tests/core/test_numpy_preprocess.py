"""Pillow + NumPy preprocessing against torchvision's, and the shipped reference photos."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
from PIL import Image
from skimage import data

from effnet_app.core.models import zoo
from effnet_app.core.runtime import reference

# B0..B7 differ in resize and crop; Lite is bicubic with its own mean and std. None of
# the released specs is bilinear or nearest, so those are the B0 spec with its filter
# changed, and a resize smaller than the crop makes torchvision pad.
BASE_SPECS = ["lite0", "lite2", "b0", "b1", "b3", "b5", "b7"]


def _variants() -> dict[str, zoo.Preprocess]:
    specs = {key: zoo.get_spec(key).preprocess for key in BASE_SPECS}
    b0 = specs["b0"]
    specs["b0-bilinear"] = dataclasses.replace(b0, interpolation="bilinear")
    specs["b0-nearest"] = dataclasses.replace(b0, interpolation="nearest")
    specs["b0-padded"] = dataclasses.replace(b0, resize_size=200)
    return specs


def _photos() -> dict[str, Image.Image]:
    """Real photos at odd sizes, landscape and portrait, grey made RGB, tiny and exact."""
    coffee = Image.fromarray(data.coffee())
    chelsea = Image.fromarray(data.chelsea())
    astronaut = Image.fromarray(data.astronaut())
    return {
        "coffee": coffee,
        "chelsea-portrait": chelsea.crop((13, 0, 240, 299)),
        "astronaut-odd": astronaut.crop((5, 9, 338, 510)),
        "camera-grey": Image.fromarray(data.camera()).convert("RGB").crop((0, 0, 501, 333)),
        "coffee-tiny": coffee.resize((37, 23), Image.Resampling.BILINEAR),
        "astronaut-exact": astronaut.resize((256, 256)),
    }


@pytest.mark.parametrize("key", list(_variants()))
def test_numpy_preprocessing_equals_torchvision(key):
    preprocess = _variants()[key]
    for name, image in _photos().items():
        want = preprocess.apply(image).numpy()
        got = preprocess.apply_numpy(image)
        assert got.dtype == np.float32 and got.flags.c_contiguous, name
        assert got.shape == want.shape == (3, preprocess.crop_size, preprocess.crop_size), name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=f"{key} {name}")


def _fresh(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_numpy_preprocessing_and_reference_batch_never_import_torch():
    report = _fresh(
        "import json, sys\n"
        "from effnet_app.core.models import zoo\n"
        "from effnet_app.core.runtime.reference import reference_batch\n"
        "p = zoo.Preprocess(256, 224, 'bicubic', (0.5,) * 3, (0.5,) * 3)\n"
        "batch = reference_batch(p, limit=20)\n"
        "print(json.dumps({'shape': list(batch.shape), 'dtype': str(batch.dtype),\n"
        "    'torch': sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))}))"
    )
    assert report == {"shape": [20, 3, 224, 224], "dtype": "float32", "torch": []}


def _shipped():
    folder = resources.files("effnet_app.assets").joinpath("reference")
    return folder, sorted(p for p in folder.iterdir() if p.name.endswith(".jpg"))


def test_shipped_photos_are_small_jpegs_each_with_a_stated_licence():
    folder, files = _shipped()
    assert 6 <= len(files) <= 8
    assert sum(len(f.read_bytes()) for f in files) < 300 * 1024
    licences = folder.joinpath("LICENSES.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(" `"): line for line in licences.splitlines() if ".jpg" in line
    }
    for file in files:
        with Image.open(file) as image:
            assert image.format == "JPEG" and max(image.size) <= 400, file.name
        row = rows[file.name]  # every photo has its row, naming a source and a licence
        assert "Public domain" in row or "CC0" in row, file.name
        assert "skimage.data" in row, file.name


def test_reference_images_are_many_distinct_and_the_same_every_time():
    first, second = reference.reference_images(), reference.reference_images()
    assert len(first) >= 200
    names = [name for name, _ in first]
    assert len(set(names)) == len(names) and names == [name for name, _ in second]
    digest = [hashlib.sha256(image.tobytes()).hexdigest() for _, image in first]
    assert digest == [hashlib.sha256(image.tobytes()).hexdigest() for _, image in second]
    assert len(set(digest)) == len(digest)  # no two inputs are the same pixels
    assert all(image.mode == "RGB" for _, image in first)
    assert len({image.size for _, image in first}) > 10  # crops at several scales
    by_name = dict(first)
    photos = reference.photo_names()
    assert names[: len(photos)] == photos  # every photo whole first, then mirrored
    mirrored = by_name[f"{photos[0]}-mirror"]
    assert np.array_equal(np.asarray(mirrored), np.asarray(by_name[photos[0]])[:, ::-1])


def test_reference_batch_in_numpy_or_torch():
    preprocess = zoo.get_spec("b0").preprocess
    numpy_batch = reference.reference_batch(preprocess, limit=12)
    torch_batch = reference.reference_batch(preprocess, limit=12, wants="torch")
    assert numpy_batch.shape == (12, 3, 224, 224) and numpy_batch.dtype == np.float32
    assert tuple(torch_batch.shape) == numpy_batch.shape
    np.testing.assert_allclose(torch_batch.numpy(), numpy_batch, rtol=0, atol=1e-4)
    images = reference.reference_images()
    assert np.array_equal(numpy_batch[5], preprocess.apply_numpy(images[5][1]))
    assert len(reference.reference_batch(preprocess)) == len(images)
    with pytest.raises(ValueError, match="wants"):
        reference.reference_batch(preprocess, wants="jax")
