"""classify --output: never over an input, a link, a device or a FIFO; rows as they come."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading

import pytest
from photos import photo_copies

from effnet_app.cli import common
from effnet_app.cli.output import ResultsOutput
from effnet_app.core.runtime.classifier import ImageResult, Prediction
from effnet_app.core.runtime.results_io import to_csv, to_json


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _results(tmp_path, count: int) -> list[ImageResult]:
    rows = []
    for i in range(count):
        if i % 3 == 2:
            rows.append(ImageResult(tmp_path / f"bad{i}.jpg", problem="not an image"))
        else:
            ranked = (Prediction("espresso", 0.9, 967), Prediction("cup", 0.05, 968))
            rows.append(ImageResult(tmp_path / f"café {i}.jpg", ranked))
    return rows


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
@pytest.mark.parametrize("count", [0, 1, 7])
def test_rows_written_batch_by_batch_are_the_bytes_of_the_whole(tmp_path, capsys, fmt, count):
    """Streamed to stdout or to a file, a run's output is what the whole list gives."""
    rows = _results(tmp_path, count)
    out_file = tmp_path / f"out.{fmt}"
    for path in (None, out_file):
        output = ResultsOutput(fmt, 2, path, [])
        for start in range(0, count, 3):  # batches of three, as a classifier yields them
            output.add(rows[start : start + 3])
        output.finish()
    printed = capsys.readouterr().out
    assert out_file.read_bytes() == printed.encode()
    if fmt == "csv":
        assert printed == to_csv(rows, 2, file_info=True)
    elif fmt == "json":
        assert printed == to_json(rows, file_info=True)
    else:
        assert printed.splitlines()[0].split() == ["file", "top-1", "confidence", "also"]
    assert sorted(os.listdir(tmp_path)) == [out_file.name]


def test_a_run_that_stops_keeps_its_rows_in_the_part_file(tmp_path):
    rows = _results(tmp_path, 5)
    out_file = tmp_path / "out.csv"
    output = ResultsOutput("csv", 2, out_file, [])
    output.add(rows[:3])
    assert output.abort() == f"3 rows were written to {out_file}.part before the run stopped."
    assert not out_file.exists()
    assert (tmp_path / "out.csv.part").read_bytes() == to_csv(rows[:3], 2, file_info=True).encode(
        "utf-8", "surrogateescape"
    )
    nothing = ResultsOutput("json", 2, tmp_path / "none.json", [])
    assert nothing.abort() is None and sorted(os.listdir(tmp_path)) == ["out.csv.part"]


def test_an_output_that_is_an_input_is_refused_and_the_photo_kept(run_cli, photo_folder, tmp_path):
    photo = photo_folder / "coffee.jpg"
    before = photo.read_bytes()
    (tmp_path / "alias.jpg").hardlink_to(photo)
    (tmp_path / "link.jpg").symlink_to(photo)
    for output, given in (
        (photo, photo),  # the photo itself
        (photo, photo_folder),  # a photo inside a folder being classified
        (tmp_path / "alias.jpg", photo_folder),  # another name for the same file
        (tmp_path / "link.jpg", photo),
    ):
        code, out, err = run_cli("classify", str(given), "--format", "csv", "-o", str(output))
        assert code == common.EXIT_USAGE and out == ""
        assert "is one of the files being classified" in err and "--output" in err
        assert photo.read_bytes() == before and (tmp_path / "link.jpg").is_symlink()
    assert sorted(os.listdir(photo_folder)) == ["chelsea.jpg", "coffee.jpg"]


def test_an_existing_output_keeps_its_mode(run_cli, photo_folder, tmp_path):
    out_file = tmp_path / "private.csv"
    out_file.write_text("old results")
    out_file.chmod(0o600)
    code, _, _ = run_cli(
        "classify", str(photo_folder), "--format", "csv", "-q", "-o", str(out_file)
    )
    assert code == 0 and out_file.read_text().startswith("path,problem")
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600


def test_an_output_link_writes_its_target_and_stays_a_link(run_cli, photo_folder, tmp_path):
    target = tmp_path / "runs" / "monday.json"
    target.parent.mkdir()
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    code, _, _ = run_cli("classify", str(photo_folder), "--format", "json", "-q", "-o", str(link))
    assert code == 0 and link.is_symlink() and os.readlink(link) == str(target)
    assert len(json.loads(target.read_text())) == 2
    assert sorted(os.listdir(tmp_path)) == ["latest.json", "photos", "runs"]


def test_a_fifo_output_gets_the_rows(run_cli, photo_folder, tmp_path):
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, _, _ = run_cli("classify", str(photo_folder), "--format", "csv", "-q", "-o", str(fifo))
    reader.join(timeout=60)
    assert code == 0 and len(received) == 1
    rows = _csv_rows(received[0].decode())
    assert rows[0][:3] == ["path", "problem", "label_1"] and len(rows) == 3
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == [
        "photos",
        "rows",
    ]


def test_dev_full_as_output_is_a_sentence_and_stays_a_device(run_cli, photo_folder):
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("needs Linux's /dev/full")
    code, out, err = run_cli("classify", str(photo_folder), "--format", "csv", "-o", "/dev/full")
    assert code == common.EXIT_OUTPUT and out == ""
    assert "/dev/full" in err and "full" in err and "Traceback" not in err
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


@pytest.mark.slow
def test_a_link_to_stdout_as_output_writes_through(run_child, photo_folder, tmp_path):
    """`-o /dev/stdout` (here a link of our own to /proc/self/fd/1, the same kind of link)."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    out = run_child("classify", str(photo_folder), "--format", "csv", "-q", "-o", str(link))
    assert out.returncode == 0 and len(_csv_rows(out.stdout)) == 3
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    out = run_child("classify", str(photo_folder), "--format", "json", "-q", "-o", "/dev/stdout")
    assert out.returncode == 0 and len(json.loads(out.stdout)) == 2
    assert os.path.islink("/dev/stdout")


def _lines(path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture
def many_photos(sample_photos, tmp_path):
    """Enough copies of a photo that classifying them one at a time takes a while."""
    return photo_copies(sample_photos["coffee"], tmp_path / "many", 300)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_rows_stream_to_a_part_file_that_sigterm_keeps(many_photos, tmp_path, fmt, wait_until):
    """Rows reach FILE.part as they come; SIGTERM keeps them, names the file, exits 143."""
    out_file = tmp_path / f"results.{fmt}"
    part = tmp_path / f"results.{fmt}.part"
    command = [sys.executable, "-m", "effnet_app", "classify", str(many_photos), "--format", fmt]
    command += ["--batch-size", "1", "-q", "-o", str(out_file)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Two rows at least: a header and two lines of CSV, or two objects of JSON.
        wait_until(lambda: _lines(part) >= (3 if fmt == "csv" else 60), "rows in the part file")
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == common.EXIT_TERMINATED
    assert not out_file.exists() and part.is_file()
    text = part.read_text()
    if fmt == "csv":
        rows = _csv_rows(text)[1:]
        assert rows and all(len(row) == 14 and row[2] == "espresso" for row in rows)
    else:
        rows = json.loads(text + "\n]")  # a list whose closing bracket never came
        assert rows and all(r["predictions"][0]["label"] == "espresso" for r in rows)
    assert f"{len(rows)} rows were written to {part}" in err
    assert "SIGTERM" in err and "Traceback" not in err


def test_a_second_run_with_the_same_output_leaves_the_first_ones_file(
    run_cli, photo_folder, tmp_path
):
    """While one run writes results.csv.part, another run for results.csv is refused."""
    out_file = tmp_path / "results.csv"
    first = ResultsOutput("csv", 2, out_file, [])  # the run already going
    first.add(_results(tmp_path, 2))
    code, out, err = run_cli("classify", str(photo_folder), "--format", "csv", "-o", str(out_file))
    assert code == common.EXIT_OUTPUT and out == ""
    assert "Another run is writing results.csv.part" in err and "Traceback" not in err
    first.finish()
    assert out_file.read_bytes() == to_csv(_results(tmp_path, 2), 2, file_info=True).encode()
    assert sorted(os.listdir(tmp_path)) == ["photos", "results.csv"]


def _limit_file_size(limit: int):
    def limit_in_child() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_in_child


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_disk_that_fills_up_keeps_only_whole_rows(sample_photos, tmp_path):
    """The write that does not fit is taken back: the part file holds whole CSV rows."""
    photos = photo_copies(sample_photos["coffee"], tmp_path / "many", 40)
    out_file = tmp_path / "results.csv"
    command = [sys.executable, "-m", "effnet_app", "classify", str(photos), "--format", "csv"]
    command += ["--batch-size", "3", "-q", "-o", str(out_file)]
    child = subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size(2500)
    )
    assert child.returncode == common.EXIT_OUTPUT, child.stderr
    text = (tmp_path / "results.csv.part").read_bytes().decode()
    rows = _csv_rows(text)[1:]
    assert text.endswith("\r\n") and rows and all(len(r) == 14 for r in rows)
    assert f"{len(rows)} rows were written to {out_file}.part" in child.stderr
    assert not out_file.exists() and "Traceback" not in child.stderr
