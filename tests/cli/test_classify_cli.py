"""The engine's command line: classify formats and exit codes, models, download, import."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from loopback import LoopbackServer
from served_weights import point_spec_at, random_weights

from effnet_app import cli
from effnet_app.core.models import weights, zoo


@pytest.fixture
def photo_folder(sample_photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea"):
        shutil.copy(sample_photos[name], folder / f"{name}.jpg")
    return folder


def _run(capsys, *args):
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_classify_json_one_row_per_file_exit_0(capsys, photo_folder):
    code, out, err = _run(capsys, "classify", str(photo_folder), "--format", "json", "--top-k", "3")
    assert code == 0
    rows = json.loads(out)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["chelsea.jpg", "coffee.jpg"]
    assert rows[1]["predictions"][0]["label"] == "espresso"
    assert all(len(r["predictions"]) == 3 and r["problem"] is None for r in rows)
    assert "2 classified, 0 with problems" in err


def test_classify_csv_with_problem_rows_exit_1(capsys, photo_folder, tmp_path):
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out_file = tmp_path / "out" / "results.csv"
    code, out, err = _run(
        capsys,
        "classify",
        str(photo_folder),
        "--format",
        "csv",
        "--top-k",
        "2",
        "-o",
        str(out_file),
    )
    assert code == 1 and out == ""
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert len(rows) == 3
    assert list(rows[0]) == [
        "path",
        "problem",
        "label_1",
        "probability_1",
        "label_2",
        "probability_2",
    ]
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["problem"] and broken["label_1"] == ""
    coffee = next(r for r in rows if r["path"].endswith("coffee.jpg"))
    assert coffee["label_1"] == "espresso" and float(coffee["probability_1"]) > 0.5
    assert "broken.jpg" in err and "problem" in err


def test_classify_table_is_readable(capsys, photo_folder):
    code, out, _ = _run(capsys, "classify", str(photo_folder / "coffee.jpg"), "-q")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["file", "top-1", "confidence"]
    assert "espresso" in row and "%" in row


def test_missing_weights_device_and_model_exit_2(capsys, photo_folder, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code, _, err = _run(capsys, "classify", str(photo_folder), "--model", "b3")
    assert code == 2 and "effnet-app download B3" in err
    code, _, err = _run(capsys, "classify", str(photo_folder), "--model", "b9")
    assert code == 2 and "lite0" in err
    if not torch.cuda.is_available():
        code, _, err = _run(capsys, "classify", str(photo_folder), "--device", "cuda")
        assert code == 2 and "CUDA" in err


def test_models_lists_every_variant(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code, out, _ = _run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "name", "input"]
    keys = [line.split()[0] for line in lines[1:]]
    assert keys[:9] == ["lite0", "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"]
    assert "bundled" in lines[1] and "not downloaded" in lines[2]
    b3 = next(line for line in lines if line.startswith("b3 "))
    assert "300px" in b3 and "12.2M" in b3 and "82.0%" in b3


def test_download_from_a_mirror_lands_in_the_cache(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name, data = random_weights("b0")
    spec = point_spec_at(monkeypatch, "b0", name)
    with LoopbackServer({f"/mirror/{name}": data}) as server:
        code, out, err = _run(capsys, "download", "b0", "--mirror", server.url + "/mirror")
    assert code == 0 and "weights saved to" in out
    assert weights.cached_path(spec).read_bytes() == data


def test_import_weights_then_available(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = zoo.get_spec("b0")
    file = tmp_path / "my_b0.pth"
    torch.save(spec.build().state_dict(), file)
    code, out, _ = _run(capsys, "import-weights", "B0", str(file))
    assert code == 0 and "imported" in out
    assert weights.is_available(spec)
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a state dict")
    code, _, err = _run(capsys, "import-weights", "b1", str(bad))
    assert code == 2 and err


def test_entry_point_subprocess_exit_codes(tmp_path, sample_photos):
    out = subprocess.run(
        [sys.executable, "-m", "effnet_app", "classify", str(tmp_path / "nothing-here.jpg"), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "file not found" in out.stderr


def test_a_file_name_that_is_not_utf8_is_printed_and_saved(capsys, photo_folder, tmp_path):
    raw = os.fsencode(photo_folder) + b"/caf\xe9.jpg"
    try:
        with open(raw, "wb") as f:
            f.write((photo_folder / "coffee.jpg").read_bytes())
    except OSError:
        pytest.skip("this file system only takes UTF-8 names")
    code, out, _ = _run(capsys, "classify", str(photo_folder), "-q")  # stdout is strict UTF-8
    assert code == 0 and "caf\\udce9.jpg" in out and "espresso" in out
    out_file = tmp_path / "results.csv"
    code, _, _ = _run(capsys, "classify", str(photo_folder), "-q", "-o", str(out_file))
    assert code == 0 and b"caf\xe9.jpg" in out_file.read_bytes()


@pytest.mark.parametrize("size", ["0", "-3"])
def test_batch_size_below_one_is_bad_usage(capsys, photo_folder, size):
    code, out, err = _run(capsys, "classify", str(photo_folder), "--batch-size", size)
    assert code == 2 and out == "" and "--batch-size" in err


@pytest.mark.parametrize("mirror", ["weights.example.com/files", "http://[::1"])
def test_a_mirror_that_is_not_an_address_is_a_sentence(capsys, mirror):
    code, _, err = _run(capsys, "download", "b0", "--mirror", mirror, "-q")
    assert code == 2 and "not a download address" in err and "Traceback" not in err


def test_an_app_home_that_is_a_file_is_a_sentence(capsys, monkeypatch, tmp_path):
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("EFFNET_APP_HOME", str(blocker))
    code, _, err = _run(capsys, "models")
    assert code == 2 and str(blocker) in err and "EFFNET_APP_HOME" in err


def test_a_reader_that_stops_early_gets_no_traceback():
    """`effnet-app paths | head -1`: the pipe closes before everything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "effnet_app", "paths"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
    assert out.returncode != 0
