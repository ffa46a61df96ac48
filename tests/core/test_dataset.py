"""Scanning, checking and splitting labelled datasets, on small real folders of images."""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from datasets import make_shapes, write_digits
from PIL import Image

from effnet_app.core.data import dataset_checks
from effnet_app.core.data.dataset import (
    Dataset,
    Sample,
    near_duplicate_groups,
    scan,
    split,
)
from effnet_app.core.errors import DatasetError
from effnet_app.core.jobs import Cancelled, CancelToken, Progress, run_to_end


def _scan(source, **options) -> Dataset:
    return run_to_end(scan(source, **options))


def _pngs(folder: Path, count: int, side: int = 16, start: int = 0) -> list[Path]:
    """``count`` small PNGs of one colour each, drawn from their path: all different bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = folder / f"img{i}.png"
        colour = zlib.crc32(str(path).encode()).to_bytes(4, "little")[:3]
        Image.new("RGB", (side, side), tuple(colour)).save(path)
        paths.append(path)
    return paths


def _codes(dataset: Dataset, level: str | None = None) -> list[str]:
    return [c.code for c in dataset.checks if level is None or c.level == level]


def _check(dataset: Dataset, code: str, class_name: str | None = None):
    found = [c for c in dataset.checks if c.code == code and c.class_name == class_name]
    assert len(found) == 1, dataset.checks
    return found[0]


def _names(dataset: Dataset, indices) -> list[str]:
    return [dataset.samples[i].path.name for i in indices]


# ---------------------------------------------------------------------------------------
# Layouts


def test_class_folders_with_nesting_hidden_files_and_natural_order(tmp_path):
    _pngs(tmp_path / "class10", 3)
    _pngs(tmp_path / "class2", 2)
    _pngs(tmp_path / "class2" / "deeper" / "deepest", 2, start=50)
    _pngs(tmp_path / "class2" / ".hidden", 2, start=90)
    (tmp_path / "class2" / ".secret.png").write_bytes(b"hidden, not read")
    (tmp_path / "class10" / "notes.txt").write_text("not an image, not listed")

    dataset = _scan(tmp_path)

    assert dataset.layout == "folders" and dataset.source == tmp_path
    assert dataset.classes == ("class2", "class10")  # natural order, index = label
    assert [r.count for r in dataset.reports] == [4, 3]
    assert [s.label for s in dataset.samples] == [0, 0, 0, 0, 1, 1, 1]
    assert [p.name for p in dataset.reports[0].examples] == ["img50.png", "img51.png", "img0.png"]
    assert dataset.reports[0].folder == tmp_path / "class2"
    assert all(len(s.digest) == 64 for s in dataset.samples)
    assert dataset.fixed_val is None
    assert _codes(dataset, "error") == [] and dataset.usable
    assert _check(dataset, "few_images", "class10").level == "warning"


def test_train_val_layout_is_used_as_it_is(tmp_path):
    _pngs(tmp_path / "train" / "cats", 6)
    _pngs(tmp_path / "train" / "dogs", 6, start=10)
    _pngs(tmp_path / "val" / "cats", 2, start=20)
    _pngs(tmp_path / "val" / "dogs", 3, start=30)
    _pngs(tmp_path / "test" / "cats", 1, start=40)

    dataset = _scan(tmp_path)

    assert dataset.layout == "train_val" and dataset.classes == ("cats", "dogs")
    assert [r.count for r in dataset.reports] == [8, 9]
    assert sorted(_names(dataset, dataset.fixed_val)) == sorted(
        f"img{i}.png" for i in (20, 21, 30, 31, 32)
    )
    assert dataset.reports[0].folder == tmp_path / "train" / "cats"
    assert "'test'" in _check(dataset, "unused_folders").sentence
    result = split(dataset, 0.5, seed=3)
    assert set(result.val) == set(dataset.fixed_val)
    assert set(result.train) == set(range(len(dataset.samples))) - dataset.fixed_val
    assert dataset.summary()["validation_images"] == 5


def test_train_val_classes_missing_from_one_side(tmp_path):
    _pngs(tmp_path / "train" / "cats", 3)
    _pngs(tmp_path / "train" / "dogs", 3, start=10)
    _pngs(tmp_path / "val" / "cats", 2, start=20)
    _pngs(tmp_path / "val" / "owls", 2, start=30)

    dataset = _scan(tmp_path)

    assert dataset.classes == ("cats", "dogs", "owls")
    assert _check(dataset, "not_in_val", "dogs").level == "warning"
    assert _check(dataset, "not_in_train", "owls").level == "error"
    assert not dataset.usable


def test_csv_with_header_relative_and_absolute_paths_and_a_missing_file(tmp_path):
    images = tmp_path / "images"
    cats, dogs = _pngs(images / "c", 3), _pngs(images / "d", 3, start=10)
    rows = ["path,label"]
    rows += [f"images/c/{p.name},cat" for p in cats]  # relative to the CSV's folder
    rows += [f"{p},dog" for p in dogs]  # absolute
    rows += ["images/gone.png,dog", "only-a-path.png", ""]
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(rows) + "\n")

    dataset = _scan(table)

    assert dataset.layout == "csv" and dataset.classes == ("cat", "dog")
    assert [r.count for r in dataset.reports] == [3, 3]
    assert {s.path for s in dataset.samples} == set(cats) | set(dogs)
    missing = _check(dataset, "missing_files")
    assert missing.level == "warning" and "'images/gone.png'" in missing.sentence
    assert "line 9" in _check(dataset, "bad_rows").sentence
    assert dataset.reports[0].folder is None


def test_csv_without_header_and_nothing_usable_is_an_error(tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("a.png,cat\nb.png,dog\n")
    dataset = _scan(table)
    assert dataset.samples == ()
    assert _check(dataset, "missing_files").level == "error"
    assert not dataset.usable
    assert "2 files" in _check(dataset, "missing_files").sentence  # no header row taken


@pytest.mark.parametrize("make", ["missing", "empty_folder", "empty_classes", "not_csv", "loose"])
def test_a_source_with_nothing_to_check_raises_a_sentence(tmp_path, make):
    source = tmp_path / "data"
    if make == "empty_folder":
        source.mkdir()
    elif make == "empty_classes":
        (source / "cats").mkdir(parents=True)
    elif make == "not_csv":
        source = tmp_path / "data.zip"
        source.write_bytes(b"PK")
    elif make == "loose":
        _pngs(source, 3)
    with pytest.raises(DatasetError) as caught:
        next(scan(source))  # at once: the job's first step
    assert str(caught.value).endswith("or a CSV of path,label rows.")


# ---------------------------------------------------------------------------------------
# Checks


def test_one_class_is_an_error_with_a_sentence(tmp_path):
    _pngs(tmp_path / "cats", 6)
    check = _check(_scan(tmp_path), "too_few_classes")
    assert check.level == "error"
    assert check.sentence.startswith("Only one class was found ('cats'); a model needs")


def test_an_empty_class_folder_is_a_warning_and_not_a_class(tmp_path):
    make_shapes(tmp_path, classes=("circle", "square"), per_class=5)
    (tmp_path / "birds" / "nothing-here").mkdir(parents=True)
    dataset = _scan(tmp_path)
    assert dataset.classes == ("circle", "square")
    assert _check(dataset, "empty_class", "birds").level == "warning"
    assert dataset.usable


def test_class_sizes_one_is_an_error_three_a_warning(tmp_path):
    _pngs(tmp_path / "big", 8)
    _pngs(tmp_path / "one", 1, start=10)
    _pngs(tmp_path / "three", 3, start=20)
    dataset = _scan(tmp_path)
    one = _check(dataset, "class_too_small", "one")
    assert one.level == "error"
    assert one.sentence == (
        "The class 'one' has only 1 image; add at least one more, or remove the folder."
    )
    assert _check(dataset, "few_images", "three").level == "warning"
    assert [c.class_name for c in dataset.errors] == ["one"]
    assert not dataset.usable


def test_imbalance_beyond_ten_times_is_a_warning(tmp_path):
    _pngs(tmp_path / "many", 60)
    _pngs(tmp_path / "few", 5, start=100)
    check = _check(_scan(tmp_path), "imbalance")
    assert (
        check.level == "warning" and "'many' has 60" in check.sentence and "12×" in check.sentence
    )
    _pngs(tmp_path / "few", 1, start=200)  # 60 / 6 = 10x: not beyond
    assert "imbalance" not in _codes(_scan(tmp_path))


def test_corrupt_files_are_counted_per_class_with_reasons(tmp_path, sample_photos):
    make_shapes(tmp_path, classes=("circle", "square"), per_class=5)
    (tmp_path / "circle" / "text.jpg").write_text("this is text, not a JPEG")
    (tmp_path / "circle" / "empty.png").write_bytes(b"")
    data = sample_photos["coffee"].read_bytes()
    (tmp_path / "square" / "cut.jpg").write_bytes(data[: len(data) // 2])

    dataset = _scan(tmp_path)

    circle, square = dataset.reports
    assert dict((p.name, why) for p, why in circle.unreadable) == {
        "text.jpg": "not an image",
        "empty.png": "empty file",
    }
    assert [(p.name, why) for p, why in square.unreadable] == [
        ("cut.jpg", "truncated or damaged JPEG")
    ]
    assert (circle.count, square.count) == (5, 5)
    assert len(dataset.samples) == 10 and dataset.usable
    warning = _check(dataset, "unreadable", "square")
    assert warning.level == "warning" and "'cut.jpg': truncated or damaged JPEG" in warning.sentence
    assert dataset.summary()["problems"]["unreadable"] == 3


def test_exact_duplicates_are_used_once_and_counted(tmp_path):
    cats = _pngs(tmp_path / "cats", 5)
    _pngs(tmp_path / "dogs", 5, start=10)
    shutil.copy(cats[0], tmp_path / "cats" / "copy.png")
    shutil.copy(cats[1], tmp_path / "cats" / "zz_copy.png")

    dataset = _scan(tmp_path)

    report = dataset.reports[0]
    assert (report.count, report.duplicates) == (5, 2)
    kept = [s.path.name for s in dataset.samples if s.label == 0]
    assert "copy.png" in kept and "img0.png" not in kept  # the first in order is kept
    assert "zz_copy.png" not in kept
    assert _check(dataset, "duplicates", "cats").level == "info"


def test_the_same_image_under_two_classes_is_a_conflict_left_out(tmp_path):
    cats = _pngs(tmp_path / "cats", 5)
    _pngs(tmp_path / "dogs", 5, start=10)
    shutil.copy(cats[2], tmp_path / "dogs" / "which.png")

    dataset = _scan(tmp_path)

    assert dataset.conflicts == ((cats[2], tmp_path / "dogs" / "which.png"),)
    assert [r.count for r in dataset.reports] == [4, 5]
    assert cats[2] not in {s.path for s in dataset.samples}
    check = _check(dataset, "conflicting_labels")
    assert "'img2.png' in 'cats' and 'dogs'" in check.sentence


def test_small_images_are_counted_against_min_side(tmp_path):
    _pngs(tmp_path / "tiny", 3, side=40)
    _pngs(tmp_path / "fine", 3, side=64, start=10)
    Image.new("RGB", (300, 50), "red").save(tmp_path / "fine" / "strip.jpg")

    dataset = _scan(tmp_path, min_side=224)  # small: shorter side under 56

    assert {r.name: r.small for r in dataset.reports} == {"fine": 1, "tiny": 3}
    assert "under 56 of 224 pixels" in _check(dataset, "small_images", "tiny").sentence
    assert all(r.small == 0 for r in _scan(tmp_path).reports)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_class_folders_that_are_symlink_loops_finish_with_a_sentence(tmp_path):
    root = tmp_path / "data"
    _pngs(root / "cats", 3)
    _pngs(root / "dogs", 3, start=10)
    os.symlink(root / "loop", root / "loop")  # points at itself
    os.symlink(root, root / "everything")  # leads back to the dataset folder
    os.symlink(root / "cats", root / "cats" / "again")  # a loop inside a class
    os.symlink(tmp_path / "gone", root / "broken")

    dataset = _scan(root)

    assert dataset.classes == ("cats", "dogs")
    assert [r.count for r in dataset.reports] == [3, 3]
    loop = _check(dataset, "link_loop", "loop")
    assert loop.sentence.startswith("The folder 'loop' is a link that leads back into itself")
    assert _check(dataset, "link_loop", "everything").level == "warning"
    assert _check(dataset, "broken_link", "broken").level == "warning"


def test_scan_reports_progress_with_counts(tmp_path):
    make_shapes(tmp_path, per_class=20, size=32)
    job = scan(tmp_path)
    events = list(iter(lambda: next(job, None), None))  # every event, to the end
    assert all(isinstance(e, Progress) for e in events)
    checking = [e for e in events if e.total is not None]
    assert checking[0].done == 0 and checking[-1].done == checking[-1].total == 60
    assert [e.done for e in checking] == sorted(e.done for e in checking)
    assert {e.unit for e in events} == {"images"}


def test_cancel_mid_scan_raises_cancelled(tmp_path):
    make_shapes(tmp_path, per_class=40, size=32)
    token = CancelToken()
    job = scan(tmp_path, cancel=token)
    while (event := next(job)).total is None or event.done == 0:
        pass  # until some images have been checked
    token.cancel()
    with pytest.raises(Cancelled):
        while True:
            next(job)


def test_summary_is_plain_json(tmp_path):
    make_shapes(tmp_path, classes=("circle", "square"), per_class=4)
    (tmp_path / "circle" / "bad.png").write_text("nope")
    summary = json.loads(json.dumps(_scan(tmp_path).summary()))
    assert summary["layout"] == "folders" and summary["classes"] == ["circle", "square"]
    assert summary["counts"] == {"circle": 4, "square": 4} and summary["images"] == 8
    assert summary["problems"]["unreadable"] == 1
    unreadable = [c for c in summary["checks"] if c["code"] == "unreadable"]
    assert unreadable == [
        {"level": "warning", "code": "unreadable", "sentence": unreadable[0]["sentence"],
         "class": "circle"}
    ]  # fmt: skip


def test_helpers_write_the_same_files_every_time(tmp_path):
    first = make_shapes(tmp_path / "a", per_class=3)
    second = make_shapes(tmp_path / "b", per_class=3)
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert len(files) == 9
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    digits = _scan(write_digits(tmp_path / "digits", per_class=3, size=24))
    assert digits.classes == tuple(str(i) for i in range(10))
    assert [r.count for r in digits.reports] == [3] * 10
    with Image.open(digits.samples[0].path) as image:
        assert (image.size, image.mode) == ((24, 24), "RGB")


# ---------------------------------------------------------------------------------------
# Split


def _toy(counts: list[int]) -> Dataset:
    """A dataset of fake samples (the split never opens files): counts[label] of each."""
    samples = tuple(
        Sample(Path(f"c{label}/{i}.png"), label, f"{label}-{i}")
        for label, count in enumerate(counts)
        for i in range(count)
    )
    classes = tuple(f"c{label}" for label in range(len(counts)))
    return Dataset(Path("toy"), "folders", classes, samples, (), (), ())


def _val_per_class(dataset: Dataset, val) -> list[int]:
    return np.bincount([dataset.samples[i].label for i in val], minlength=len(dataset.classes))


def test_split_is_deterministic_and_stratified():
    dataset = _toy([50, 30, 20])
    first, again = split(dataset, 0.2, seed=7), split(dataset, 0.2, seed=7)
    assert first == again
    assert split(dataset, 0.2, seed=8).val != first.val
    assert sorted(first.train + first.val) == list(range(100))
    assert list(_val_per_class(dataset, first.val)) == [10, 6, 4]
    assert list(first.val) == sorted(first.val)


def test_split_keeps_one_of_each_class_on_each_side():
    dataset = _toy([40, 2, 3, 1])
    for seed in range(5):
        result = split(dataset, 0.1, seed=seed)
        val = _val_per_class(dataset, result.val)
        train = _val_per_class(dataset, result.train)
        assert list(val[:3] >= 1) == [True] * 3 and list(train[:3] >= 1) == [True] * 3
        assert (val[3], train[3]) == (0, 1)  # a class of one trains


def test_split_does_not_depend_on_listing_order(tmp_path):
    for name, order in (("a", range(30)), ("b", reversed(range(30)))):
        for i in order:
            label = "odd" if i % 2 else "even"
            _pngs(tmp_path / name / label, 1, start=i)
    first, second = _scan(tmp_path / "a"), _scan(tmp_path / "b")
    names = [_names(d, split(d, 0.3, seed=1).val) for d in (first, second)]
    assert names[0] == names[1]


def test_groups_never_straddle_the_split_and_strata_stay_close():
    dataset = _toy([60, 40])
    groups = [i // 4 for i in range(100)]  # groups of 4 images, each inside one class
    for seed in range(3):
        result = split(dataset, 0.2, seed=seed, groups=groups)
        val_groups = {groups[i] for i in result.val}
        assert val_groups.isdisjoint(groups[i] for i in result.train)
        assert list(_val_per_class(dataset, result.val)) == [12, 8]
    result = split(dataset, 0.3, seed=0, groups=groups)
    assert abs(len(result.val) - 30) <= 4
    mixed = [i // 2 if i < 40 else 1000 + i for i in range(100)]  # pairs, then loners
    result = split(dataset, 0.2, seed=0, groups=mixed)
    assert {mixed[i] for i in result.val}.isdisjoint(mixed[i] for i in result.train)
    assert np.abs(_val_per_class(dataset, result.val) - [12, 8]).max() <= 2


def test_a_class_all_in_one_group_stays_whole():
    dataset = _toy([20, 4])
    groups = list(range(20)) + [99] * 4  # every image of c1 is a near-copy of the others
    result = split(dataset, 0.25, seed=0, groups=groups)
    c1 = {i for i in range(20, 24)}
    assert c1 <= set(result.train) or c1 <= set(result.val)
    assert _val_per_class(dataset, result.val)[0] >= 1


@pytest.mark.parametrize("fraction", [0, 1, -0.2, 1.5, math.nan, True, "0.2", None])
def test_split_refuses_bad_fractions(fraction):
    with pytest.raises(DatasetError, match="between 0 and 1"):
        split(_toy([5, 5]), fraction)


def test_split_refuses_what_cannot_be_split():
    with pytest.raises(DatasetError, match="too few distinct images"):
        split(_toy([1, 1]), 0.2)
    with pytest.raises(DatasetError, match="too few distinct images"):
        split(_toy([3, 3]), 0.2, groups=[0] * 6)
    with pytest.raises(ValueError, match="one id per sample"):
        split(_toy([3, 3]), 0.2, groups=[0, 1])


# ---------------------------------------------------------------------------------------
# Near-duplicates


def _features(rng, count: int, dims: int = 1280):
    # Pooled features after ReLU are non-negative and sparse-ish; so are these.
    return np.maximum(rng.normal(size=(count, dims)), 0).astype(np.float32)


def test_near_duplicate_groups_join_perturbed_copies_only():
    rng = np.random.default_rng(0)
    base = _features(rng, 6)
    copy = base[2] * 3.0 + rng.normal(scale=0.02, size=base.shape[1])  # scale is ignored
    features = np.vstack([base, copy[None, :]])
    groups = near_duplicate_groups(features, threshold=0.97)
    assert groups == [0, 1, 2, 3, 4, 5, 2]
    assert near_duplicate_groups(np.eye(4, 16)) == [0, 1, 2, 3]  # orthogonal
    note = dataset_checks.near_duplicates(groups)
    assert note is not None and note.sentence.startswith("2 images are near-copies")
    assert dataset_checks.near_duplicates([0, 1, 2]) is None


def test_near_duplicate_groups_are_transitive_and_blockwise(monkeypatch):
    rng = np.random.default_rng(1)
    features = _features(rng, 45)
    a, b = np.linalg.qr(rng.normal(size=(features.shape[1], 2)))[0].T  # orthonormal
    step = math.acos(0.985)  # neighbours on this arc have cosine 0.985, the ends 0.87
    features[40:44] = [math.cos(k * step) * a + math.sin(k * step) * b for k in range(4)]
    features[44] = 0  # a zero vector joins nothing
    expected = near_duplicate_groups(features, threshold=0.98)
    assert float(features[40] @ features[43]) < 0.9
    assert expected[40:44] == [40] * 4 and expected[:40] == list(range(40))
    assert expected[44] == 41
    monkeypatch.setattr(dataset_checks, "_BLOCK_ELEMENTS", 3 * features.shape[0])
    monkeypatch.setattr(dataset_checks, "_MAX_EDGES", 1)
    assert near_duplicate_groups(features, threshold=0.98) == expected
    assert near_duplicate_groups(np.zeros((0, 8))) == []
