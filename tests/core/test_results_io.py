"""Results as CSV/JSON and back, and sorting images into one folder per label."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from effnet_app.core.jobs import Cancelled, CancelToken, run_to_end
from effnet_app.core.runtime import results_io
from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.core.runtime.results_io import (
    ResultsFileError,
    RunInfo,
    SortCancelled,
    read_results,
    sort_into_folders,
    to_csv,
    to_json,
    write_results,
)

INFO = RunInfo("b0", "EfficientNet-B0", "cuda:0")


def _result(path, *ranked, problem=None):
    predictions = tuple(Prediction(label, p, i) for i, (label, p) in enumerate(ranked))
    return ImageResult(Path(path), predictions, problem)


@pytest.fixture
def results(tmp_path):
    return [
        _result(tmp_path / "chat noir.jpg", ("tabby, tabby cat", 0.8123456789), ("lynx", 0.1)),
        _result(tmp_path / "ünïcødé" / "咖啡.png", ("espresso", 0.999999), ("cup", 1e-7)),
        _result(tmp_path / "broken.jpg", problem="could not be read (truncated, 12 bytes)"),
        _result(tmp_path / 'odd "quoted", name.jpg', ("a/b", 0.5)),
    ]


# --------------------------------------------------------------------------- formats


def test_csv_keeps_the_cli_format_exactly():
    rows = [_result("/x/a.jpg", ("cat", 0.5), ("dog", 0.25)), _result("/x/b.jpg", problem="bad")]
    assert to_csv(rows, 3) == (
        "path,problem,label_1,probability_1,label_2,probability_2,label_3,probability_3\r\n"
        "/x/a.jpg,,cat,0.500000,dog,0.250000,,\r\n"
        "/x/b.jpg,bad,,,,,,\r\n"
    )


def test_csv_with_run_info_ends_with_model_and_device(results):
    rows = list(csv.reader(io.StringIO(to_csv(results, 2, INFO))))
    assert rows[0][-2:] == ["model", "device"] and rows[0][:3] == ["path", "problem", "label_1"]
    assert all(row[-2:] == ["EfficientNet-B0", "cuda:0"] for row in rows[1:])
    assert len(rows[0]) == 2 + 2 * 2 + 2


def test_json_keeps_the_cli_format_exactly(results):
    rows = json.loads(to_json(results))
    assert [set(row) for row in rows] == [{"path", "predictions", "problem"}] * len(results)
    assert rows[0]["predictions"][0] == {"label": "tabby, tabby cat", "probability": 0.812346}
    assert rows[2] == {
        "path": str(results[2].path),
        "predictions": [],
        "problem": results[2].problem,
    }
    assert to_json(results).endswith("]\n")


def test_json_with_run_info_adds_model_and_device(results):
    rows = json.loads(to_json(results, INFO))
    assert all(row["model"] == "EfficientNet-B0" and row["device"] == "cuda:0" for row in rows)


def _streamed(writer, results, per_piece=1):
    """What a writer gives a piece at a time, pieces of ``per_piece`` rows."""
    pieces = [writer.start()]
    for i in range(0, len(results), per_piece):
        pieces.append("".join(writer.row(r) for r in results[i : i + per_piece]))
    return "".join(pieces) + writer.end()


@pytest.mark.parametrize("count", [0, 1, 4])
@pytest.mark.parametrize("info", [None, INFO])
def test_json_written_row_by_row_is_the_same_bytes_as_all_at_once(results, count, info):
    rows = results[:count]
    whole = [
        {
            "path": str(r.path),
            "predictions": [
                {"label": p.label, "probability": round(p.probability, 6)} for p in r.predictions
            ],
            "problem": r.problem,
            **({"model": info.model, "device": info.device} if info else {}),
        }
        for r in rows
    ]
    expected = json.dumps(whole, indent=2) + "\n"  # how the whole list was always written
    assert _streamed(results_io.RowWriter("json", info=info), rows) == expected
    assert to_json(rows, info) == expected
    assert json.loads(_streamed(results_io.RowWriter("json"), rows, per_piece=3)) is not None


@pytest.mark.parametrize("count", [0, 1, 4])
def test_csv_written_row_by_row_is_the_same_bytes_as_all_at_once(results, count):
    rows = results[:count]
    for info in (None, INFO):
        writer = results_io.RowWriter("csv", 2, info)
        assert _streamed(writer, rows, per_piece=2) == to_csv(rows, 2, info)
        assert writer.rows == count
    with pytest.raises(ValueError):
        results_io.RowWriter("csv")  # row by row, the columns must be known first


def _assert_same(read, wrote, top_k=None):
    assert [r.path for r in read] == [r.path for r in wrote]
    assert [r.problem for r in read] == [r.problem for r in wrote]
    for got, want in zip(read, wrote, strict=True):
        want_predictions = want.predictions[:top_k] if top_k else want.predictions
        assert [p.label for p in got.predictions] == [p.label for p in want_predictions]
        for g, w in zip(got.predictions, want_predictions, strict=True):
            assert g.probability == pytest.approx(w.probability, abs=1e-6)
            assert g.index == results_io.UNKNOWN_INDEX


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("info", [None, INFO])
def test_round_trip(tmp_path, results, fmt, info):
    target = tmp_path / "out" / f"résultats.{fmt}"
    assert write_results(target, results, fmt, info=info) == target
    _assert_same(read_results(target), results)
    assert sorted(os.listdir(target.parent)) == [target.name]


def test_csv_round_trip_keeps_top_k_only(tmp_path, results):
    target = write_results(tmp_path / "top1.csv", results, "csv", top_k=1)
    _assert_same(read_results(target), results, top_k=1)


def test_read_results_tells_formats_apart_by_content(tmp_path, results):
    target = tmp_path / "no_suffix"
    target.write_text(to_json(results, INFO), encoding="utf-8")
    _assert_same(read_results(target), results)
    target.write_text("\ufeff" + to_csv(results), encoding="utf-8")  # a spreadsheet's BOM
    _assert_same(read_results(target), results)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, world\n1,2\n", b'{"path": "x"}', b"[1, 2]", b"\xff\xfe\x00garbage", b"[{"],
)
def test_unreadable_results_are_a_sentence(tmp_path, content):
    target = tmp_path / "weird.csv"
    target.write_bytes(content)
    with pytest.raises(ResultsFileError, match="weird.csv is not a results file"):
        read_results(target)


def test_missing_results_file(tmp_path):
    with pytest.raises(ResultsFileError, match="There is no file at"):
        read_results(tmp_path / "nope.json")


def test_unknown_format_is_refused(tmp_path, results):
    with pytest.raises(ValueError):
        write_results(tmp_path / "x.xml", results, "xml")


# --------------------------------------------------------------------------- sorting


def _image(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), colour).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """Four images in two folders, classified: two cats, a dog (55%), one unreadable."""
    src = tmp_path / "src"
    cat1 = _image(src / "cat1.png", (10, 10, 10))
    cat2 = _image(src / "sub" / "cat2.png", (20, 20, 20))
    dog = _image(src / "dog.png", (30, 30, 30))
    broken = src / "broken.jpg"
    broken.write_bytes(b"not an image")
    return [
        _result(cat1, ("tabby cat", 0.9), ("lynx", 0.05)),
        _result(cat2, ("tabby cat", 0.7)),
        _result(dog, ("golden retriever", 0.55)),
        _result(broken, problem="could not be read"),
    ]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_copy_into_label_folders_never_overwrites(tmp_path, photos):
    dest = tmp_path / "sorted"
    clash = dest / "tabby cat" / "cat1.png"
    clash.parent.mkdir(parents=True)
    clash.write_bytes(b"the user's own file")
    before = {r.path: r.path.read_bytes() for r in photos}
    summary = run_to_end(sort_into_folders(photos, dest))
    assert clash.read_bytes() == b"the user's own file"
    assert _tree(dest) == {
        "tabby cat/cat1.png": b"the user's own file",
        "tabby cat/cat1 (2).png": before[photos[0].path],
        "tabby cat/cat2.png": before[photos[1].path],
        "golden retriever/dog.png": before[photos[2].path],
    }
    assert all(path.read_bytes() == data for path, data in before.items())  # originals stay
    assert (summary.copied, summary.moved, summary.renamed) == (3, 0, 1)
    assert (summary.skipped_problems, summary.skipped_low_confidence, summary.errors) == (1, 0, ())
    assert summary.folders == (dest / "tabby cat", dest / "golden retriever")
    sentence = summary.sentence()
    assert sentence.startswith(f"Copied 3 images into 2 folders in {dest}")
    assert "1 renamed to avoid overwriting" in sentence and "1 image with problems" in sentence


def test_copy_keeps_timestamps(tmp_path, photos):
    os.utime(photos[0].path, (1_000_000_000, 1_000_000_000))
    run_to_end(sort_into_folders(photos[:1], tmp_path / "out"))
    assert (tmp_path / "out" / "tabby cat" / "cat1.png").stat().st_mtime == 1_000_000_000


def test_min_confidence_leaves_unsure_images_in_place(tmp_path, photos):
    dest = tmp_path / "sorted"
    summary = run_to_end(sort_into_folders(photos, dest, move=True, min_confidence=0.6))
    assert set(_tree(dest)) == {"tabby cat/cat1.png", "tabby cat/cat2.png"}
    assert photos[2].path.exists() and not photos[0].path.exists()
    assert (summary.moved, summary.skipped_low_confidence, summary.skipped_problems) == (2, 1, 1)
    assert "1 below 60% left in place" in summary.sentence()


def test_move_removes_originals_and_leaves_no_part_files(tmp_path, photos):
    dest = tmp_path / "sorted"
    data = photos[1].path.read_bytes()
    summary = run_to_end(sort_into_folders(photos, dest, move=True))
    assert summary.moved == 3 and summary.copied == 0 and summary.errors == ()
    assert not any(r.path.exists() for r in photos[:3])
    assert photos[3].path.exists()  # the problem file is left alone
    assert (dest / "tabby cat" / "cat2.png").read_bytes() == data
    assert not [p for p in tmp_path.rglob("*.part")]
    assert summary.sentence().startswith("Moved 3 images into 2 folders")


def _other_file_system(tmp_path) -> Path | None:
    for base in ("/dev/shm", tempfile.gettempdir()):
        if os.path.isdir(base) and os.stat(base).st_dev != os.stat(tmp_path).st_dev:
            return Path(base)
    return None


def test_move_across_file_systems(tmp_path, photos, monkeypatch):
    other = _other_file_system(tmp_path)
    if other is None:  # still take the cross-device path: copy, then remove the original
        monkeypatch.setattr(results_io, "_same_device", lambda src, folder: False)
        other = tmp_path
    with tempfile.TemporaryDirectory(dir=other) as far:
        dest = Path(far) / "sorted"
        data = photos[0].path.read_bytes()
        summary = run_to_end(sort_into_folders(photos, dest, move=True))
        assert summary.moved == 3 and summary.errors == ()
        assert (dest / "tabby cat" / "cat1.png").read_bytes() == data
        assert not any(r.path.exists() for r in photos[:3])
        assert not [p for p in dest.rglob("*.part")]


def test_a_vanished_file_is_an_error_and_the_rest_are_sorted(tmp_path, photos):
    photos[1].path.unlink()
    summary = run_to_end(sort_into_folders(photos, tmp_path / "sorted"))
    assert summary.copied == 2
    assert summary.errors == ((photos[1].path, f"no longer at {photos[1].path}"),)
    assert set(_tree(tmp_path / "sorted")) == {"tabby cat/cat1.png", "golden retriever/dog.png"}
    assert f"1 could not be copied: cat2.png (no longer at {photos[1].path})" in summary.sentence()


def test_moving_twice_loses_nothing(tmp_path, photos):
    dest = tmp_path / "sorted"
    run_to_end(sort_into_folders(photos, dest, move=True))
    first = _tree(dest)
    again = run_to_end(sort_into_folders(photos, dest, move=True))
    assert _tree(dest) == first
    assert again.moved == 0 and len(again.errors) == 3
    assert all(why.startswith("no longer at") for _, why in again.errors)


def test_sorting_a_sorted_folder_again_changes_nothing(tmp_path, photos):
    dest = tmp_path / "sorted"
    run_to_end(sort_into_folders(photos, dest, move=True))
    first = _tree(dest)
    moved = [
        _result(dest / "tabby cat" / "cat1.png", ("tabby cat", 0.9)),
        _result(dest / "golden retriever" / "dog.png", ("golden retriever", 0.9)),
    ]
    summary = run_to_end(sort_into_folders(moved, dest, move=True))
    assert _tree(dest) == first and summary.moved == 2 and summary.renamed == 0


def test_unsafe_labels_stay_inside_the_destination(tmp_path):
    a = _image(tmp_path / "a.png")
    b = _image(tmp_path / "b.png")
    results = [_result(a, ("../../escape", 0.9)), _result(b, ("CON", 0.9))]
    dest = tmp_path / "sorted"
    summary = run_to_end(sort_into_folders(results, dest))
    assert set(_tree(dest)) == {"_.._escape/a.png", "_CON/b.png"}
    assert all(folder.parent == dest for folder in summary.folders)


def test_cancel_after_the_first_file(tmp_path, photos):
    token = CancelToken()
    dest = tmp_path / "sorted"
    job = sort_into_folders(photos, dest, move=True, cancel=token)
    start = next(job)
    assert (start.done, start.total) == (0, 4)
    first = next(job)
    assert (first.done, first.total) == (1, 4) and "cat1.png" in first.message
    token.cancel()
    with pytest.raises(SortCancelled) as caught:
        next(job)
    assert isinstance(caught.value, Cancelled)
    summary = caught.value.summary
    assert summary.moved == 1 and summary.folders == (dest / "tabby cat",)
    assert _tree(dest) == {"tabby cat/cat1.png": (dest / "tabby cat" / "cat1.png").read_bytes()}
    assert not photos[0].path.exists() and photos[1].path.exists() and photos[2].path.exists()
    assert not [p for p in tmp_path.rglob("*.part")]


def test_progress_counts_every_file(tmp_path, photos):
    events = list(sort_into_folders(photos, tmp_path / "sorted"))
    assert [e.done for e in events] == [0, 1, 2, 3, 4]
    assert all(e.total == 4 and e.unit == "images" for e in events)


def test_an_unusable_destination_is_a_sentence(tmp_path, photos):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    with pytest.raises(results_io.AppError, match="Choose another destination"):
        run_to_end(sort_into_folders(photos, blocker / "sorted"))
    assert all(r.path.exists() for r in photos)


def test_file_names_that_are_not_utf8_round_trip(tmp_path):
    """POSIX names may hold any bytes; Python hands them over as surrogates."""
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.jpg"))
    wrote = [_result(path, ("espresso", 0.9))]
    for fmt in ("csv", "json"):
        target = write_results(tmp_path / f"latin1.{fmt}", wrote, fmt)
        read = read_results(target)
        assert read[0].path == path and os.fsencode(read[0].path).endswith(b"caf\xe9.jpg")
    assert b"caf\xe9.jpg" in (tmp_path / "latin1.csv").read_bytes()  # the name as on disk


def test_a_csv_field_over_the_csv_modules_limit_is_a_sentence(tmp_path):
    target = tmp_path / "huge.csv"
    target.write_text("path,label_1,probability_1\n" + "a" * 200_000 + ",cat,1\n")
    with pytest.raises(ResultsFileError, match="huge.csv is not a results file"):
        read_results(target)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_names_with_carriage_returns_read_back_as_written(tmp_path, fmt):
    """A CR inside a quoted CSV field is data, not a line end (macOS "Icon\\r" and such)."""
    rows = [ImageResult(tmp_path / "cr\rname.jpg", (Prediction("cup", 0.5, 968),))]
    path = write_results(tmp_path / f"out.{fmt}", rows, fmt)
    assert [r.path for r in read_results(path)] == [tmp_path / "cr\rname.jpg"]
