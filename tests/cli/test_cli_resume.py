"""classify --resume: a killed or interrupted run goes on, each file in one row only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from resume_helpers import assert_union, done_before, generated_images, whole_rows

from effnet_app.cli import common
from effnet_app.core.runtime.results_io import read_results

pytest.importorskip("pyarrow")


def _stop_halfway(folder, out_file, fmt: str, signum: int, wait_until):
    part = out_file.with_name(out_file.name + ".part")
    command = [sys.executable, "-m", "effnet_app", "classify", str(folder), "--format", fmt]
    command += ["--batch-size", "1", "-q", "-o", str(out_file)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: whole_rows(part, fmt) >= 8, "rows in the part file")
        os.kill(child.pid, signum)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
        child.wait()
    return child.returncode, err, part


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_sigkill_halfway_then_resume_completes_without_duplicates(
    run_child, tmp_path, fmt, wait_until
):
    folder = generated_images(tmp_path / "images", 60)
    out_file = tmp_path / f"results.{fmt}"
    code, _, part = _stop_halfway(folder, out_file, fmt, signal.SIGKILL, wait_until)
    assert code == -signal.SIGKILL and part.is_file() and not out_file.exists()
    written = whole_rows(part, fmt)
    assert 8 <= written < 60
    again = run_child("classify", str(folder), "--format", fmt, "-o", str(out_file), "--resume")
    assert again.returncode == 0, again.stderr
    assert done_before(again.stderr) == written
    assert f"{60 - written} classified, 0 with problems, {written} done before" in again.stderr
    assert not part.exists()
    assert_union(out_file, folder)


@pytest.mark.slow
def test_ctrl_c_leaves_a_part_that_resumes(run_child, tmp_path, wait_until):
    folder = generated_images(tmp_path / "images", 60)
    out_file = tmp_path / "results.csv"
    code, err, part = _stop_halfway(folder, out_file, "csv", signal.SIGINT, wait_until)
    assert code == common.EXIT_INTERRUPTED and "Traceback" not in err, err[-2000:]
    written = whole_rows(part, "csv")
    assert f"{written} rows were written to {part}" in err
    again = run_child("classify", str(folder), "--format", "csv", "-o", str(out_file), "--resume")
    assert again.returncode == 0 and done_before(again.stderr) == written
    assert_union(out_file, folder)


def _classify(run_cli, folder, out_file, fmt, *more):
    return run_cli("classify", str(folder), "--format", fmt, "-o", str(out_file), *more)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_torn_last_row_is_cut_off_and_done_again(run_cli, photo_folder, tmp_path, fmt):
    out_file = tmp_path / f"results.{fmt}"
    assert _classify(run_cli, photo_folder, out_file, fmt, "-q")[0] == 0
    whole = out_file.read_bytes()
    part = tmp_path / f"results.{fmt}.part"
    lines = whole.splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # killed mid-row
    out_file.unlink()
    code, _, err = _classify(run_cli, photo_folder, out_file, fmt, "--resume")
    assert code == 0 and "1 done before, 1 to go" in err
    assert_union(out_file, photo_folder)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_changed_file_is_done_again_once_and_a_new_one_added(
    run_cli, photo_folder, sample_photos, tmp_path, fmt
):
    out_file = tmp_path / f"results.{fmt}"
    assert _classify(run_cli, photo_folder, out_file, fmt, "-q")[0] == 0
    shutil.copy(sample_photos["camera"], photo_folder / "coffee.jpg")  # changed since
    shutil.copy(sample_photos["astronaut"], photo_folder / "new.jpg")
    code, _, err = _classify(run_cli, photo_folder, out_file, fmt, "--resume")
    assert code == 0 and "1 done before, 2 to go" in err
    assert_union(out_file, photo_folder)
    rows = {r.path.name: r for r in read_results(out_file)}
    assert rows["coffee.jpg"].top1.label != "espresso"  # classified again: the new photo
    code, _, err = _classify(run_cli, photo_folder, out_file, fmt, "--resume")
    assert code == 0 and "all 3 files are in" in err and "nothing to do" in err


def test_a_complete_output_is_left_as_it_is(run_cli, photo_folder, tmp_path):
    out_file = tmp_path / "results.csv"
    assert _classify(run_cli, photo_folder, out_file, "csv", "-q")[0] == 0
    before = out_file.read_bytes()
    code, out, err = _classify(run_cli, photo_folder, out_file, "csv", "--resume")
    assert code == 0 and out == "" and "all 2 files are in" in err
    assert out_file.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["photos", "results.csv"]


def test_nothing_to_resume_starts_from_the_beginning(run_cli, photo_folder, tmp_path):
    out_file = tmp_path / "results.jsonl"
    code, _, err = _classify(run_cli, photo_folder, out_file, "jsonl", "--resume")
    assert code == 0 and "nothing to resume" in err
    assert_union(out_file, photo_folder)


def test_resume_is_refused_where_it_cannot_work(run_cli, photo_folder, tmp_path):
    for fmt in ("json", "table"):
        code, _, err = _classify(run_cli, photo_folder, tmp_path / "r", fmt, "--resume")
        assert code == 2 and f"--format {fmt} cannot be resumed" in err
    code, _, err = run_cli("classify", str(photo_folder), "--format", "csv", "--resume")
    assert code == 2 and "add --output" in err
    out_file = tmp_path / "results.csv"
    assert _classify(run_cli, photo_folder, out_file, "csv", "-q", "--top-k", "2")[0] == 0
    out_file.rename(tmp_path / "results.csv.part")
    code, _, err = _classify(run_cli, photo_folder, out_file, "csv", "--resume")
    assert code == common.EXIT_OUTPUT and "not those of this run" in err


def test_a_resume_from_another_folder_is_refused_not_done_twice(
    run_cli, photo_folder, tmp_path, monkeypatch
):
    monkeypatch.chdir(photo_folder.parent)
    out_file = tmp_path / "results.jsonl"
    code, _, _ = _classify(run_cli, photo_folder.name, out_file, "jsonl")
    assert code == 0
    before = out_file.read_bytes()
    out_file.rename(out_file.with_name("results.jsonl.part"))
    monkeypatch.chdir(tmp_path.parent)
    given = os.path.relpath(photo_folder)
    code, _, err = _classify(run_cli, given, out_file, "jsonl", "--resume")
    assert code != 0 and "relative to the folder the first run started in" in err
    assert out_file.with_name("results.jsonl.part").read_bytes() == before


LOST_IN_CLASSIFY = """
import os, signal, sys, time
from effnet_app import cli
from effnet_app.cli.output import ResultsOutput

add, calls = ResultsOutput.add, []

def add_then_lose_a_ctrl_c(self, results, stored=False):
    add(self, results, stored)
    if results:
        calls.append(len(results))
        if len(calls) == 3:
            try:  # as a __del__ or a library's bare except would
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1.0)
            except KeyboardInterrupt:
                pass

ResultsOutput.add = add_then_lose_a_ctrl_c
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_ctrl_c_lost_during_classify_stops_it_and_keeps_the_rows(tmp_path):
    folder = generated_images(tmp_path / "images", 12)
    out_file = tmp_path / "results.csv"
    part = out_file.with_name(out_file.name + ".part")
    args = ["classify", str(folder), "--format", "csv", "--batch-size", "1", "-q"]
    child = subprocess.run(
        [sys.executable, "-c", LOST_IN_CLASSIFY, *args, "-o", str(out_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == common.EXIT_INTERRUPTED, child.stderr[-2000:]
    written = whole_rows(part, "csv")
    assert 3 <= written < 12 and not out_file.exists()
    assert f"{written} rows were written to {part}" in child.stderr
