"""Edits to a dataset from the results: moves between classes, exclusions, undo; without()."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from datasets import make_shapes

from effnet_app.core.data import dataset as datasets
from effnet_app.core.data.edits import DataEdits, Edit
from effnet_app.core.errors import DatasetError
from effnet_app.core.jobs import run_to_end


def scan(source):
    return run_to_end(datasets.scan(source))


def counts(dataset) -> dict[str, int]:
    return {r.name: r.count for r in dataset.reports}


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_shapes(tmp_path / "shapes", per_class=6, size=32)


@pytest.fixture
def train_val(tmp_path) -> Path:
    root = tmp_path / "tv"
    make_shapes(root / "train", classes=("circle", "square"), per_class=5, size=32)
    make_shapes(root / "val", classes=("circle", "square"), per_class=2, size=32, seed=1)
    return root


# --------------------------------------------------------------------------- moves
def test_a_move_puts_the_file_in_the_other_class_folder(shapes):
    ds = scan(shapes)
    edits = DataEdits(ds)
    source = shapes / "circle" / "circle_03.png"
    data = source.read_bytes()
    edit = edits.move_to_class(source, "square")
    assert edit == Edit("move", source, shapes / "square" / "circle_03.png", "circle", "square")
    assert edit.describe() == "Moved circle_03.png from circle to square"
    assert not source.exists() and edit.target.read_bytes() == data
    assert edits.edits == [edit] and edits.class_of(edit.target) == "square"
    after = edits.apply(ds)
    assert counts(after) == {"circle": 5, "square": 7, "triangle": 6}
    moved = next(s for s in after.samples if s.path == edit.target)
    assert after.classes[moved.label] == "square"
    assert moved.digest == next(s.digest for s in ds.samples if s.path == source)
    # What a fresh scan of the folder finds is what apply() said.
    rescanned = scan(shapes)
    assert counts(rescanned) == counts(after)
    assert sorted(s.path for s in rescanned.samples) == sorted(s.path for s in after.samples)


def test_a_move_never_replaces_a_file_of_the_same_name(shapes):
    edits = DataEdits(scan(shapes))
    taken = shapes / "square" / "circle_00.png"
    shutil.copy(shapes / "square" / "square_00.png", taken)
    kept = taken.read_bytes()
    edit = edits.move_to_class(shapes / "circle" / "circle_00.png", "square")
    assert edit.target == shapes / "square" / "circle_00 (2).png"
    assert taken.read_bytes() == kept
    third = shapes / "circle" / "circle_00.png"
    shutil.copy(shapes / "circle" / "circle_01.png", third)  # the same name comes back
    edits2 = DataEdits(scan(shapes))
    assert edits2.move_to_class(third, "square").target.name == "circle_00 (3).png"


def test_a_move_to_a_new_class_makes_its_folder_and_the_class(shapes):
    ds = scan(shapes)
    edits = DataEdits(ds)
    for name in ("circle_00.png", "circle_01.png"):
        edits.move_to_class(shapes / "circle" / name, "round")
    assert sorted(p.name for p in (shapes / "round").iterdir()) == [
        "circle_00.png",
        "circle_01.png",
    ]
    after = edits.apply(ds)
    assert after.classes == ("circle", "round", "square", "triangle")
    assert counts(after)["round"] == 2 and counts(after)["circle"] == 4
    assert after.reports[1].folder == shapes / "round"
    assert [check.code for check in after.warnings] == ["few_images", "few_images"]


def test_a_file_moved_twice_and_undone_comes_home(shapes):
    ds = scan(shapes)
    edits = DataEdits(ds)
    before = files(shapes)
    source = shapes / "circle" / "circle_02.png"
    first = edits.move_to_class(source, "square")
    second = edits.move_to_class(first.target, "triangle")
    assert second.given == "square" and second.path == first.target
    assert counts(edits.apply(ds)) == {"circle": 5, "square": 6, "triangle": 7}
    assert edits.undo() == second and edits.undo() == first
    assert source.is_file() and not second.target.exists() and not first.target.exists()
    assert counts(edits.apply(ds)) == counts(ds) and edits.undo() is None
    assert files(shapes) == before


def test_in_train_and_val_folders_a_move_stays_on_its_side(train_val):
    ds = scan(train_val)
    assert ds.layout == "train_val"
    edits = DataEdits(ds)
    val_file = train_val / "val" / "circle" / "circle_00.png"
    train_file = train_val / "train" / "square" / "square_01.png"
    assert edits.move_to_class(val_file, "square").target == train_val / "val/square/circle_00.png"
    assert edits.move_to_class(train_file, "circle").target.parent == train_val / "train/circle"
    after = edits.apply(ds)
    in_val = sorted(after.samples[i].path for i in after.fixed_val)
    assert in_val == sorted((train_val / "val").rglob("*.png"))
    assert after.summary()["validation_images"] == 4
    rescanned = scan(train_val)
    assert rescanned.fixed_val == after.fixed_val and rescanned.samples == after.samples


def test_a_csv_dataset_refuses_moves_with_a_sentence(shapes):
    listing = shapes / "labels.csv"
    rows = [f"{p.relative_to(shapes)},{p.parent.name}" for p in sorted(shapes.rglob("*.png"))]
    listing.write_text("path,label\n" + "\n".join(rows) + "\n")
    ds = scan(listing)
    edits = DataEdits(ds)
    assert ds.layout == "csv" and not edits.can_move()
    before = files(shapes)
    with pytest.raises(DatasetError, match="labels.csv") as caught:
        edits.move_to_class(shapes / "circle" / "circle_00.png", "square")
    assert "exclude" in caught.value.sentence
    assert files(shapes) == before and edits.edits == []
    assert edits.exclude(shapes / "circle" / "circle_00.png").kind == "exclude"


def test_moves_that_make_no_sense_are_sentences(shapes, tmp_path):
    edits = DataEdits(scan(shapes))
    with pytest.raises(DatasetError, match="already in the class 'circle'"):
        edits.move_to_class(shapes / "circle" / "circle_00.png", "circle")
    with pytest.raises(DatasetError, match="cannot be a class folder's name"):
        edits.move_to_class(shapes / "circle" / "circle_00.png", "a/b")
    stranger = tmp_path / "elsewhere.png"
    shutil.copy(shapes / "circle" / "circle_00.png", stranger)
    with pytest.raises(DatasetError, match="not one of the images"):
        edits.move_to_class(stranger, "square")
    assert edits.edits == []


# --------------------------------------------------------------------------- failures
def test_a_failing_move_loses_nothing(shapes, monkeypatch):
    edits = DataEdits(scan(shapes))
    before = files(shapes)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "link", refuse)
    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(DatasetError, match="left where it was") as caught:
        edits.move_to_class(shapes / "circle" / "circle_04.png", "round")
    assert "Permission denied" in caught.value.sentence
    assert files(shapes) == before and not (shapes / "round").exists()
    assert edits.edits == [] and edits.class_of(shapes / "circle" / "circle_04.png") == "circle"


def test_a_move_whose_original_cannot_be_removed_leaves_no_second_copy(shapes, monkeypatch):
    edits = DataEdits(scan(shapes))
    source = shapes / "circle" / "circle_04.png"
    before = files(shapes)
    unlink = os.unlink

    def refuse_source(path, *args, **kwargs):
        if Path(path) == source:
            raise PermissionError(errno.EACCES, "Permission denied")
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse_source)
    with pytest.raises(DatasetError, match="left where it was"):
        edits.move_to_class(source, "square")
    assert files(shapes) == before


def test_a_move_to_another_file_system_copies_then_removes(shapes, monkeypatch):
    edits = DataEdits(scan(shapes))
    source = shapes / "circle" / "circle_05.png"
    data = source.read_bytes()

    def cross_device(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    monkeypatch.setattr(os, "rename", cross_device)
    # With no renames at all, the copy cannot take its name either: nothing moves.
    with pytest.raises(DatasetError):
        edits.move_to_class(source, "square")
    assert source.read_bytes() == data
    assert not [p for p in (shapes / "square").iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    real_link = os.link

    def across_then_local(src, dst, *args, **kwargs):
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *args, **kwargs)

    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", across_then_local)
    monkeypatch.setattr(os, "rename", rename)
    edit = edits.move_to_class(source, "square")
    assert not source.exists() and edit.target.read_bytes() == data
    assert not [p for p in (shapes / "square").iterdir() if p.name.startswith(".")]


def test_undo_refuses_when_the_original_place_is_taken_again(shapes):
    edits = DataEdits(scan(shapes))
    source = shapes / "circle" / "circle_01.png"
    edit = edits.move_to_class(source, "square")
    source.write_bytes(b"someone else's file")
    with pytest.raises(DatasetError, match="another file is at"):
        edits.undo()
    assert source.read_bytes() == b"someone else's file" and edit.target.is_file()
    assert edits.edits == [edit]
    source.unlink()
    assert edits.undo() == edit and source.is_file() and not edit.target.exists()


# --------------------------------------------------------------------------- exclusions
def test_exclude_leaves_the_file_out_and_undo_brings_it_back(shapes):
    ds = scan(shapes)
    edits = DataEdits(ds)
    before = files(shapes)
    path = shapes / "square" / "square_02.png"
    edit = edits.exclude(path)
    assert edit == Edit("exclude", path, None, "square", None)
    assert edit.describe() == "Excluded square_02.png from training"
    assert edits.exclude(path) is edit and len(edits.edits) == 1  # once is enough
    assert edits.excluded == frozenset({path}) and files(shapes) == before
    after = edits.apply(ds)
    assert counts(after)["square"] == 5 and path not in {s.path for s in after.samples}
    moved = edits.move_to_class(path, "circle")  # the exclusion follows the file
    assert edits.excluded == frozenset({moved.target})
    assert counts(edits.apply(ds)) == counts(ds) | {"square": 5}
    assert edits.undo() == moved and edits.excluded == frozenset({path})
    assert edits.undo() == edit and edits.excluded == frozenset()
    assert edits.apply(ds) == ds


# --------------------------------------------------------------------------- without()
def test_without_recomputes_counts_and_flags_a_class_left_too_small(shapes):
    ds = scan(shapes)
    assert ds.usable and not ds.warnings
    gone = [shapes / "triangle" / f"triangle_{i:02d}.png" for i in range(5)]
    smaller = datasets.without(ds, [str(p) for p in gone])
    assert counts(smaller) == {"circle": 6, "square": 6, "triangle": 1}
    assert len(smaller.samples) == 13 and not set(gone) & {s.path for s in smaller.samples}
    assert smaller.classes == ds.classes
    assert [s.label for s in smaller.samples] == [0] * 6 + [1] * 6 + [2]
    assert not smaller.usable
    (error,) = smaller.errors
    assert error.code == "class_too_small" and error.class_name == "triangle"
    assert smaller.reports[2].examples == (shapes / "triangle" / "triangle_05.png",)
    assert datasets.without(ds, []) == ds
    emptied = datasets.without(smaller, [shapes / "triangle" / "triangle_05.png"])
    assert "no usable images" in emptied.errors[0].sentence


def test_without_remaps_the_val_folder(train_val):
    ds = scan(train_val)
    val_file = train_val / "val" / "circle" / "circle_00.png"
    train_file = train_val / "train" / "circle" / "circle_00.png"
    smaller = datasets.without(ds, [train_file])
    assert sorted(smaller.samples[i].path for i in smaller.fixed_val) == sorted(
        ds.samples[i].path for i in ds.fixed_val
    )
    no_val = datasets.without(ds, [val_file, val_file.with_name("circle_01.png")])
    assert [c.code for c in no_val.warnings] == ["not_in_val"]
    assert len(no_val.fixed_val) == 2
