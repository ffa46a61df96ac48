"""A Ray job's folder of Parquet shards, without Ray: the folder's rules and --resume's.

The rows are problem rows of real files that are not images (what a worker writes for
them), so every value here is one the app really produces.
"""

from __future__ import annotations

import json
import os

import pytest

from effnet_app.cli.common import OutputError
from effnet_app.cli.output import ResultsOutput
from effnet_app.cli.resume import prepare_shards
from effnet_app.core.data.folders import expand_paths
from effnet_app.core.errors import AppError
from effnet_app.core.runtime import results_shards as shards
from effnet_app.core.runtime.classifier import ImageResult
from effnet_app.core.runtime.results_io import read_results

pytest.importorskip("pyarrow")


@pytest.fixture
def notes(tmp_path):
    """Six text files a run finds and cannot classify: each is a problem row."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(6):
        (folder / f"note{i}.jpg").write_text(f"not a JPEG, note {i}")
    return folder


def _rows(paths):
    return [ImageResult(p, problem="not an image (cannot identify image file)") for p in paths]


def _complete(target, folder, about=None) -> list:
    files = sorted(folder.iterdir())
    out = shards.ShardFolder(target, about=about)
    for i in range(0, len(files), 2):
        out.store(_rows(files[i : i + 2]), 3, False)
    out.commit(len(files), about)
    return files


def test_a_complete_folder_has_shards_a_summary_and_reads_back(notes, tmp_path):
    target = tmp_path / "out.parquet"
    files = _complete(target, notes, {"model": "EfficientNet-Lite0"})
    assert len(shards.shard_files(target)) == 3 and not (target / shards.LOCK).exists()
    summary = json.loads((target / shards.SUMMARY).read_text())
    assert (summary["rows"], summary["problems"], summary["model"]) == (6, 6, "EfficientNet-Lite0")
    assert sorted(r.path for r in read_results(target)) == files
    (target / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # Finder's file: still our folder
    assert shards.is_shard_folder(target) and len(read_results(target)) == 6


def test_resuming_a_complete_folder_leaves_it_whole_until_the_new_run_ends(notes, tmp_path):
    target = tmp_path / "out.parquet"
    _complete(target, notes)
    before = sorted(p.name for p in target.iterdir())
    (notes / "note9.jpg").write_text("one more")
    plan = prepare_shards(target, 3, False, expand_paths([notes]))
    assert plan.done == 6 and [p.name for p in plan.todo] == ["note9.jpg"]
    assert sorted(p.name for p in target.iterdir()) == before, "OUT untouched so far"
    again = shards.ShardFolder(target, append=True)
    again.store(_rows(plan.todo), 3, False)
    again.commit(plan.rows + 1)
    assert len(read_results(target)) == 7


def test_resume_refuses_another_model_and_damaged_shards_with_sentences(notes, tmp_path):
    target = tmp_path / "out.parquet"
    _complete(target, notes, {"model": "EfficientNet-Lite0"})
    (notes / "note9.jpg").write_text("one more")
    found = expand_paths([notes])
    with pytest.raises(OutputError, match="made with EfficientNet-Lite0, not EfficientNet-B0"):
        prepare_shards(target, 3, False, found, "EfficientNet-B0")
    shards.shard_files(target)[0].write_bytes(b"PAR1 cut short")
    with pytest.raises(OutputError, match=r"The shard shard-.* cannot be read .* --resume"):
        prepare_shards(target, 3, False, found, "EfficientNet-Lite0")


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(notes, tmp_path):
    target = tmp_path / "out.parquet"
    first = shards.ShardFolder(target)
    first.store(_rows(sorted(notes.iterdir())[:2]), 3, False)
    with pytest.raises(AppError, match="Another run is writing out.parquet.part"):
        shards.ShardFolder(target)
    with pytest.raises(AppError, match="Another run is writing"):
        prepare_shards(target, 3, False, expand_paths([notes]))
    assert first.keep().endswith(f"out.parquet.part{os.sep}")
    first.close()
    assert prepare_shards(target, 3, False, expand_paths([notes])).done == 2


def test_the_row_count_says_what_went_wrong(notes, tmp_path):
    files = sorted(notes.iterdir())
    folder = shards.ShardFolder(tmp_path / "out.parquet")
    folder.store(_rows(files[:2]), 3, False)
    with pytest.raises(AppError, match="holds 2 rows, not the 3 of this run"):
        folder.commit(3)
    with pytest.raises(AppError, match="1 rows more than the 1 of this run: a batch was"):
        folder.commit(1)
    assert folder.part.is_dir() and not folder.target.exists()


def test_an_output_that_is_an_input_or_a_foreign_folder_is_refused(notes, tmp_path):
    one = notes / "note0.jpg"
    with pytest.raises(AppError, match="is one of the files being classified"):
        ResultsOutput("parquet", 3, one, [one], shards=True)
    assert one.read_text() == "not a JPEG, note 0"
    with pytest.raises(AppError, match="a folder with other files in it"):
        ResultsOutput("parquet", 3, tmp_path, [notes], shards=True)


def test_a_linked_output_is_followed_and_the_link_kept(notes, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    link = tmp_path / "out.parquet"
    link.symlink_to(shared / "out.parquet", target_is_directory=True)
    _complete(link, notes)
    assert link.is_symlink() and (shared / "out.parquet" / shards.SUMMARY).is_file()
    assert len(read_results(link)) == 6


def test_an_output_that_is_a_file_is_refused_and_kept(notes, tmp_path):
    precious = tmp_path / "f.txt"
    precious.write_text("precious")
    link = tmp_path / "ln"
    link.symlink_to(precious)
    for given in (precious, link):
        with pytest.raises(AppError, match="is a file, and a Ray job's Parquet output is a"):
            shards.ShardFolder(given)
    assert precious.read_text() == "precious" and link.is_symlink()


def test_a_full_disk_while_writing_a_shard_is_a_sentence(notes, tmp_path, monkeypatch):
    import errno
    import io

    from effnet_app.core import fsutil

    class FillsUp(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    folder = shards.ShardFolder(tmp_path / "out.parquet")
    monkeypatch.setattr(fsutil, "open", FillsUp, raising=False)
    with pytest.raises(AppError) as caught:
        folder.store(_rows(sorted(notes.iterdir())[:2]), 3, False)
    assert "disk is full" in caught.value.sentence
    monkeypatch.undo()
    assert shards.shard_files(folder.part) == [] and folder.rows() == 0
    folder.store(_rows(sorted(notes.iterdir())[:2]), 3, False)
    assert folder.rows() == 2
