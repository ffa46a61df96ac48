"""effnet-app export: a checked folder, the agreement figures on stdout, clear refusals."""

from __future__ import annotations

import os
import re

import pytest
from exports import install_export

from effnet_app import cli
from effnet_app.cli import common

FIGURES = re.compile(
    r"^  (onnxruntime|openvino) fp32: top-1 agrees on (\d+)/(\d+) reference images, "
    r"largest probability difference \d\.\de[-+]\d\d$"
)


def _figures(out: str) -> list[tuple[str, int, int]]:
    lines = out.splitlines()
    assert re.match(
        r"^Exported EfficientNet-Lite0 to .+ \((ONNX|OpenVINO IR), \d+\.\d MB\); ", lines[0]
    )
    found = [FIGURES.match(line) for line in lines[1:]]
    assert all(found), lines
    return [(m[1], int(m[2]), int(m[3])) for m in found]


@pytest.mark.slow  # exports a model (once per module or session)
def test_export_onnx_writes_the_folder_and_prints_the_figures(run_cli, lite0_export, tmp_path):
    install_export(lite0_export)
    out_dir = tmp_path / "lite0"
    code, out, err = run_cli("export", "Lite0", "--format", "onnx", "--out", str(out_dir))
    assert code == common.EXIT_OK, err
    assert [(name, a == n) for name, a, n in _figures(out)] == [
        ("onnxruntime", True),
        ("openvino", True),
    ]
    assert all(n >= 200 for _, _, n in _figures(out))
    assert "model.onnx" in os.listdir(out_dir) and str(out_dir) in out


@pytest.mark.slow  # exports a model (once per module or session)
def test_in_a_child_process_stdout_holds_only_the_summary(run_child, lite0_export, tmp_path):
    install_export(lite0_export)
    out_dir = tmp_path / "lite0"
    done = run_child("export", "lite0", "--out", str(out_dir))  # ONNX is the default
    assert done.returncode == common.EXIT_OK, done.stderr
    assert [name for name, _, _ in _figures(done.stdout)] == ["onnxruntime", "openvino"]
    assert len(done.stdout.splitlines()) == 3
    assert "model.onnx" in os.listdir(out_dir)


def test_a_folder_that_is_not_an_export_is_refused_with_exit_2(run_cli, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"not ours")
    code, out, err = run_cli("export", "lite0", "--out", str(tmp_path / "photos"))
    assert code == common.EXIT_USAGE and out == ""
    assert "not an export of this app (such as cat.jpg)" in err and err.startswith("effnet-app: ")
    assert os.listdir(tmp_path / "photos") == ["cat.jpg"]


def test_a_folder_that_cannot_be_written_is_exit_3(run_cli, tmp_path):
    (tmp_path / "a-file").write_text("x")
    code, _, err = run_cli("export", "lite0", "--out", str(tmp_path / "a-file" / "out"))
    assert code == common.EXIT_OUTPUT, err
    assert err.startswith("effnet-app: Could not write")


def test_an_unknown_model_is_exit_2(run_cli, tmp_path):
    code, _, err = run_cli("export", "b99", "--out", str(tmp_path / "x"))
    assert code == common.EXIT_USAGE and 'no model called "b99"' in err
    assert not (tmp_path / "x").exists()


def test_export_is_a_listed_command():
    assert "export" in cli.command_names()
    assert "export" in cli.build_parser().format_help()
