"""User exports: a complete, checked folder that works outside the app, never half written.

The session's Lite0 export is installed into each test's cache, so the ONNX format is
a checked copy; the OpenVINO format converts it and checks the conversion again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from exports import install_export

from effnet_app.core.errors import ExportError
from effnet_app.core.export import package, readme, sidecar
from effnet_app.core.jobs import Cancelled, CancelToken, run_to_end
from effnet_app.core.models import zoo
from effnet_app.core.runtime.classifier import Classifier, classify_all
from effnet_app.core.runtime.torch_backend import TorchBackend

SPEC = zoo.get_spec("lite0")
ONNX_FILES = ["README.md", "export.json", "labels.txt", "model.onnx", "preprocessing.json"]
OPENVINO_FILES = ["README.md", "export.json", "labels.txt", "model.bin", "model.xml"]
OPENVINO_FILES = sorted([*OPENVINO_FILES, "preprocessing.json"])


def export(fmt: str, out, cancel=None):
    job = package.export_for_user(SPEC, SPEC.bundled_weights(), fmt, out, cancel or CancelToken())
    return run_to_end(job)


@pytest.fixture(scope="module")
def app_top1(sample_photos):
    """The app's own answer (PyTorch) for each sample photo: path -> (label, probability)."""
    classifier = Classifier(SPEC, backend=TorchBackend(SPEC, "cpu"))
    return {
        str(r.path): (r.top1.label, r.top1.probability)
        for r in classify_all(classifier, list(sample_photos.values()), top_k=1)
    }


def _readme_script(folder) -> str:
    text = (folder / sidecar.README).read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert code == readme.example_code(sidecar.read_export(folder))
    return code


def _run_outside_the_app(folder, photos, allowed: set[str]) -> dict:
    """The README's script in a fresh interpreter; path -> (label, probability)."""
    script = folder.parent / "predict.py"
    check = (
        "\nimport sys\n"
        "assert 'torch' not in sys.modules and 'effnet_app' not in sys.modules\n"
        f"assert {{m.split('.')[0] for m in sys.modules}} >= {allowed!r}\n"
    )
    script.write_text(_readme_script(folder) + check)
    done = subprocess.run(
        [sys.executable, "-I", str(script), *map(str, photos)],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line.split(" ") for line in done.stdout.splitlines()]  # labels may hold spaces
    return {row[0]: (" ".join(row[1:-1]), float(row[-1])) for row in rows}


@pytest.mark.slow  # exports a model (once per module or session)
def test_an_onnx_export_is_a_complete_folder_that_works_outside_the_app(
    lite0_export, tmp_path, sample_photos, app_top1
):
    install_export(lite0_export)
    out = tmp_path / "new" / "lite0-onnx"
    info = export("onnx", out)
    assert sorted(os.listdir(out)) == ONNX_FILES and os.listdir(out.parent) == ["lite0-onnx"]
    assert info.folder == out and info.format == "onnx"
    assert sidecar.file_sha256(out / "model.onnx") == lite0_export.sha256  # the checked file
    assert info.agreements == lite0_export.agreements and info.verified()
    assert (out / "labels.txt").read_text().splitlines() == list(SPEC.categories)
    text = (out / sidecar.README).read_text()
    assert "onnxruntime fp32: top-1 agrees on" in text and "pip install onnxruntime" in text
    found = _run_outside_the_app(out, sample_photos.values(), {"onnxruntime", "numpy", "PIL"})
    for path, (label, probability) in app_top1.items():
        assert found[path][0] == label
        assert abs(found[path][1] - probability) <= 1e-3  # printed to 3 decimals


@pytest.mark.slow  # exports a model (once per module or session)
def test_an_openvino_export_is_converted_and_checked_again(
    lite0_export, tmp_path, sample_photos, app_top1, capfd
):
    install_export(lite0_export)
    out = tmp_path / "lite0-openvino"
    events = list(
        package.export_for_user(SPEC, SPEC.bundled_weights(), "openvino", out, CancelToken())
    )
    assert capfd.readouterr().out == ""  # the converter says nothing on stdout
    info = sidecar.read_export(out)
    assert sorted(os.listdir(out)) == OPENVINO_FILES
    assert not any("to ONNX" in e.message for e in events)  # the cache's file was converted
    assert (info.format, info.model_file) == ("openvino", "model.xml")
    assert [a.backend for a in info.agreements] == ["openvino"] and info.verified()
    assert info.agreements[0].images >= 200
    assert info.files["model.bin"][1] == sidecar.file_sha256(out / "model.bin")
    assert info.sha256 == sidecar.file_sha256(out / "model.xml")
    found = _run_outside_the_app(out, sample_photos.values(), {"openvino", "numpy", "PIL"})
    assert {p: v[0] for p, v in found.items()} == {p: v[0] for p, v in app_top1.items()}


def test_a_folder_with_other_files_is_refused_and_left_as_it_was(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an export of this app .such as notes.txt"):
        export("onnx", out)
    assert os.listdir(out) == ["notes.txt"] and sorted(os.listdir(tmp_path)) == ["mine"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export("onnx", tmp_path / "file")
    with pytest.raises(ExportError, match="not an export format"):
        export("tflite", tmp_path / "new")


@pytest.mark.slow  # exports a model (once per module or session)
def test_an_empty_folder_or_an_earlier_export_is_replaced_whole(lite0_export, tmp_path):
    install_export(lite0_export)
    out = tmp_path / "out"
    out.mkdir()
    export("onnx", out)
    (out / "README.md").write_text("edited")
    export("onnx", out)  # an earlier export of ours: replaced whole
    assert sorted(os.listdir(out)) == ONNX_FILES and os.listdir(tmp_path) == ["out"]
    assert (out / "README.md").read_text() != "edited"
    (out / "predict.py").write_text("# the user's own script")
    with pytest.raises(ExportError, match="such as predict.py"):
        export("onnx", out)  # no longer only ours: left alone
    assert sorted(os.listdir(out)) == sorted([*ONNX_FILES, "predict.py"])


def test_a_cancelled_export_leaves_nothing(tmp_path):
    cancel = CancelToken()
    job = package.export_for_user(SPEC, SPEC.bundled_weights(), "openvino", tmp_path / "x", cancel)
    next(job)
    cancel.cancel()
    with pytest.raises(Cancelled):
        run_to_end(job)
    assert os.listdir(tmp_path) == []


def test_without_openvino_an_openvino_export_is_refused(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ExportError, match="OpenVINO is not installed"):
        export("openvino", tmp_path / "x")
    assert os.listdir(tmp_path) == []
