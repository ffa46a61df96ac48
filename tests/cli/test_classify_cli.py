"""classify: formats, exit codes, problem rows, names, and stdout that cannot be written."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
import torch

from effnet_app.cli import common


def test_classify_json_one_row_per_file_exit_0(run_cli, photo_folder):
    code, out, err = run_cli("classify", str(photo_folder), "--format", "json", "--top-k", "3")
    assert code == 0
    rows = json.loads(out)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["chelsea.jpg", "coffee.jpg"]
    assert rows[1]["predictions"][0]["label"] == "espresso"
    assert all(len(r["predictions"]) == 3 and r["problem"] is None for r in rows)
    assert "2 classified, 0 with problems" in err


def test_classify_csv_with_problem_rows_exit_1(run_cli, photo_folder, tmp_path):
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out_file = tmp_path / "out" / "results.csv"
    code, out, err = run_cli(
        "classify", str(photo_folder), "--format", "csv", "--top-k", "2", "-o", str(out_file)
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
        "bytes",
        "modified",
    ]
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["problem"] and broken["label_1"] == ""
    coffee = next(r for r in rows if r["path"].endswith("coffee.jpg"))
    assert coffee["label_1"] == "espresso" and float(coffee["probability_1"]) > 0.5
    assert "broken.jpg" in err and "problem" in err
    assert sorted(os.listdir(out_file.parent)) == ["results.csv"]  # no part file left


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_file_gets_the_same_bytes_as_stdout(run_cli, photo_folder, tmp_path, fmt):
    _, printed, _ = run_cli("classify", str(photo_folder), "--format", fmt, "-q")
    out_file = tmp_path / f"results.{fmt}"
    code, out, _ = run_cli(
        "classify", str(photo_folder), "--format", fmt, "-q", "-o", str(out_file)
    )
    assert code == 0 and out == "" and out_file.read_bytes().decode() == printed


def test_classify_table_is_readable(run_cli, photo_folder):
    code, out, _ = run_cli("classify", str(photo_folder / "coffee.jpg"), "-q")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["file", "top-1", "confidence"]
    assert "espresso" in row and "%" in row


def test_no_images_is_exit_1_with_an_empty_list(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli("classify", str(tmp_path / "empty"), "--format", "json")
    assert code == 1 and out == "[]\n" and "no images found" in err


def test_missing_weights_device_and_model_exit_2(run_cli, photo_folder, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code, _, err = run_cli("classify", str(photo_folder), "--model", "b3")
    assert code == 2 and "effnet-app download B3" in err
    code, _, err = run_cli("classify", str(photo_folder), "--model", "b9")
    assert code == 2 and "lite0" in err
    if not torch.cuda.is_available():
        code, _, err = run_cli("classify", str(photo_folder), "--device", "cuda")
        assert code == 2 and "CUDA" in err


@pytest.mark.slow
def test_entry_point_subprocess_exit_codes(run_child, tmp_path):
    out = run_child("classify", str(tmp_path / "nothing-here.jpg"), "-q")
    assert out.returncode == 1 and "file not found" in out.stderr


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_printed_and_saved(run_cli, photo_folder, tmp_path):
    raw = os.fsencode(photo_folder) + b"/caf\xe9.jpg"
    try:
        with open(raw, "wb") as f:
            f.write((photo_folder / "coffee.jpg").read_bytes())
    except OSError:
        pytest.skip("this file system only takes UTF-8 names")
    code, out, _ = run_cli("classify", str(photo_folder), "-q")  # stdout is strict UTF-8
    assert code == 0 and "caf\\udce9.jpg" in out and "espresso" in out
    out_file = tmp_path / "results.csv"
    code, _, _ = run_cli("classify", str(photo_folder), "-q", "-o", str(out_file))
    assert code == 0 and b"caf\xe9.jpg" in out_file.read_bytes()


@pytest.mark.parametrize("size", ["0", "-3"])
def test_batch_size_below_one_is_bad_usage(run_cli, photo_folder, size):
    code, out, err = run_cli("classify", str(photo_folder), "--batch-size", size)
    assert code == 2 and out == "" and "--batch-size" in err


# --------------------------------------------------------------------------- stdout


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_results_to_a_full_stdout_are_a_sentence_and_exit_3(run_child, photo_folder, fmt):
    """`effnet-app classify img.jpg > /dev/full`."""
    with open("/dev/full", "w") as full:
        out = run_child("classify", str(photo_folder / "coffee.jpg"), "--format", fmt, stdout=full)
    assert out.returncode == common.EXIT_OUTPUT
    assert "Could not write to standard output" in out.stderr and "full" in out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr


def test_results_to_a_closed_stdout_are_a_sentence_and_exit_3(run_child, photo_folder):
    """`effnet-app classify img.jpg >&-`: said before any work is done."""
    out = run_child("classify", str(photo_folder / "coffee.jpg"), close_stdout=True)
    assert out.returncode == common.EXIT_OUTPUT
    assert "Standard output is closed" in out.stderr and "--output" in out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
