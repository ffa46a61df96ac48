"""Exports: B0 (random weights), Lite0 (real weights) and a trained bundle as ONNX, checked
against PyTorch by ONNX Runtime and OpenVINO; altered or damaged files refused; the cache.

Each model is exported once (module or session fixtures); a tiny network stands in
where only the export machinery is under test, since it converts in a second or two.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from exports import install_export, make_export, random_b0, trained_bundle
from onnx import numpy_helper
from PIL import Image

from effnet_app.core.errors import ExportError
from effnet_app.core.export import cache, sidecar, verify
from effnet_app.core.export.onnx_export import OPSET, export_job
from effnet_app.core.jobs import run_to_end
from effnet_app.core.models import registry, weights, zoo

# Reference inputs for B0, the bundle and the extra checks here, for speed: the app's own
# exports (and the session's Lite0, whose figures the CLI tests print) check all >= 200.
LIMIT = 64
RUNTIMES = ("onnxruntime", "openvino")


def drain(job) -> tuple[list, object]:
    events: list = []
    try:
        while True:
            events.append(next(job))
    except StopIteration as stop:
        return events, stop.value


class Tiny(torch.nn.Module):
    """A small network of the shape the app exports: (N, 3, 224, 224) -> (N, 1000).

    ``flip_when_exported`` makes the exported graph differ from eager PyTorch: the
    deliberately wrong export the check must refuse.
    """

    def __init__(self, flip_when_exported: bool = False) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=4)
        self.fc = torch.nn.Linear(16, 1000)
        self.flip = flip_when_exported

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1)
        logits = self.fc(torch.flatten(pooled, 1))
        if self.flip and torch.compiler.is_exporting():
            logits = logits.flip(1)
        return logits


@pytest.fixture(scope="module")
def lite0_model():
    return weights.load_model(zoo.get_spec("lite0"))


@pytest.fixture(scope="module")
def b0_export(tmp_path_factory):
    model = random_b0()
    folder = tmp_path_factory.mktemp("b0_export") / "b0"
    info = make_export(zoo.get_spec("b0"), folder, model=model, limit=LIMIT)
    return info, model, zoo.get_spec("b0")


@pytest.fixture(scope="module")
def bundle_export(tmp_path_factory):
    saved = trained_bundle(tmp_path_factory.mktemp("bundle_home"))
    spec = saved.spec()
    folder = tmp_path_factory.mktemp("bundle_export") / "bundle"
    info = make_export(spec, folder, weights_path=registry.weights_path(spec), limit=LIMIT)
    return info, registry.load_network(spec), spec


@pytest.fixture(params=["b0", "lite0", "bundle"])
def exported(request, lite0_model):
    """(ExportInfo, the PyTorch network it came from, its spec) for each kind of model."""
    if request.param == "lite0":
        return request.getfixturevalue("lite0_export"), lite0_model, zoo.get_spec("lite0")
    return request.getfixturevalue(f"{request.param}_export")


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64) / temperature, 1).numpy()


# --------------------------------------------------------------------------- the exports
@pytest.mark.slow  # exports a model (once per module or session)
def test_every_export_is_checked_by_both_runtimes_on_the_reference_photos(exported):
    info, _, _ = exported
    assert [a.backend for a in info.agreements] == list(RUNTIMES)
    for a in info.agreements:
        assert a.precision == "fp32"
        assert a.images >= 200 if info.key == "lite0" else a.images == LIMIT
        assert a.top1_agreement == 1.0 and a.max_prob_diff <= a.tolerance and a.passes()
        assert a.describe().startswith(f"{a.backend} fp32: top-1 agrees on {a.images}/")
        if info.family != "trained":  # see test_a_trained_head_with_huge_weights_...
            assert a.tolerance == 1e-4
        print(info.name, a.describe())
    assert info.verified() and info.opset == OPSET


@pytest.mark.slow  # exports a model (once per module or session)
def test_the_graph_takes_a_normalised_nchw_batch_of_any_size_and_returns_logits(exported):
    info, _, spec = exported
    graph = onnx.load(info.model_path).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == [
        "logits"
    ]

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    c = spec.resolution
    assert dims(graph.input[0]) == ["batch", 3, c, c]
    assert dims(graph.output[0]) == ["batch", spec.num_classes]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    opsets = onnx.load(info.model_path, load_external_data=False).opset_import
    assert {o.version for o in opsets if o.domain in ("", "ai.onnx")} == {OPSET}
    assert sorted(os.listdir(info.folder)) == sorted(
        [sidecar.MODEL_ONNX, sidecar.LABELS, sidecar.PREPROCESSING, sidecar.INFO]
    )


@pytest.mark.slow  # exports a model (once per module or session)
def test_runtimes_and_torch_agree_on_every_sample_photo(exported, sample_photos):
    info, model, spec = exported
    photos = [Image.open(p).convert("RGB") for p in sample_photos.values()]
    batch = torch.stack([spec.preprocess.apply(p) for p in photos])
    with torch.inference_mode():
        want = softmax(model(batch), spec.temperature)
    for runtime in RUNTIMES:
        backend = verify.make_backend(runtime, info.model_path, sha256=info.sha256)
        backend.load()
        one = backend.run(batch[:1].numpy())
        got = softmax(backend.run(batch.numpy()), spec.temperature)
        assert one.shape == (1, spec.num_classes) and got.shape == want.shape
        assert (got.argmax(1) == want.argmax(1)).all(), runtime
        assert np.abs(got - want).max() <= 1e-4, runtime


@pytest.mark.slow  # exports a model (once per module or session)
def test_export_json_describes_the_model_and_reads_back_without_torch_parts(exported):
    info, _, spec = exported
    back = sidecar.read_export(info.folder)
    assert back == info and back.files == info.files and back.source == info.source
    assert back.spec() == spec and back.spec().builder is None
    labels = (info.folder / sidecar.LABELS).read_text(encoding="utf-8").splitlines()
    assert tuple(labels) == spec.categories
    pre = json.loads((info.folder / sidecar.PREPROCESSING).read_text())
    assert {k: pre[k] for k in spec.preprocess.to_dict()} == spec.preprocess.to_dict()
    assert (pre["input_layout"], pre["dtype"], pre["value_range"]) == ("NCHW", "float32", [0, 1])
    assert len(pre["steps"]) >= 5 and all(isinstance(s, str) for s in pre["steps"])
    assert info.sha256 == sidecar.file_sha256(info.model_path)
    assert info.files[sidecar.MODEL_ONNX] == (info.model_path.stat().st_size, info.sha256)


@pytest.mark.slow  # exports a model (once per module or session)
def test_a_trained_bundle_keeps_its_temperature_and_threshold(bundle_export):
    info, _, spec = bundle_export
    assert spec.family == "trained" and spec.key == "user:shapes"
    document = json.loads((info.folder / sidecar.INFO).read_text())
    assert document["temperature"] == spec.temperature
    assert document["unknown_threshold"] == spec.unknown_threshold
    assert document["source"]["path"] == str(spec.bundle_path / "model.safetensors")
    assert info.categories == ("circle", "square", "triangle")


@pytest.mark.slow  # exports a model (once per module or session)
def test_b0_with_random_weights_gives_answers_that_differ_between_photos(b0_export, sample_photos):
    info, model, spec = b0_export
    photos = [Image.open(p).convert("RGB") for p in sample_photos.values()]
    with torch.inference_mode():
        probs = softmax(model(torch.stack([spec.preprocess.apply(p) for p in photos])))
    assert probs.max() > 0.002  # not the flat 1/1000 of an uninitialised network
    assert len(set(probs.argmax(1).tolist())) > 1
    assert info.source == {"path": None, "size": None, "mtime_ns": None}
    assert not info.source_is_current()  # a network in memory is never "current"


# --------------------------------------------------------------------------- refusals
def _altered_copy(info, folder, factor: float = 1.01):
    """The export with one weight tensor (the classifier's) scaled by ``factor``."""
    model = onnx.load(info.model_path)
    head = max(model.graph.initializer, key=lambda t: list(t.dims) == [1000, 1280])
    assert list(head.dims) == [1000, 1280]
    head.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(head) * factor, head.name))
    path = folder / sidecar.MODEL_ONNX
    onnx.save(model, path)
    return path


@pytest.mark.slow  # exports a model (once per module or session)
def test_an_export_with_one_weight_changed_by_1_percent_is_refused(
    lite0_export, lite0_model, tmp_path
):
    spec = zoo.get_spec("lite0")
    reference = run_to_end(verify.reference_job(lite0_model, spec, LIMIT))
    assert reference.images == LIMIT
    intact = run_to_end(verify.check_job(lite0_export.model_path, reference, RUNTIMES, "Lite0"))
    assert all(a.passes() for a in intact)
    altered = _altered_copy(lite0_export, tmp_path)
    with pytest.raises(ExportError, match="does not agree with PyTorch") as refused:
        run_to_end(verify.check_job(altered, reference, RUNTIMES, "Lite0"))
    assert "onnxruntime fp32" in refused.value.sentence


def test_a_wrong_export_is_refused_and_nothing_of_it_is_left(tmp_path, capfd):
    spec = zoo.get_spec("lite0")
    folder = tmp_path / "wrong"
    with pytest.raises(ExportError, match="does not agree with PyTorch"):
        run_to_end(export_job(spec, None, folder, model=Tiny(flip_when_exported=True), limit=8))
    assert not folder.exists()
    assert capfd.readouterr().out == ""  # the exporter says nothing on stdout
    with pytest.raises(ExportError):
        run_to_end(cache.ensure_export(spec, model=Tiny(flip_when_exported=True), limit=8))
    assert os.listdir(cache.exports_dir()) == []  # no part folder either
    assert cache.find_current("lite0") is None


def test_agreement_allows_near_ties_and_the_models_own_rounding():
    want = np.log(np.array([[0.5, 0.49995, 0.00005], [0.1, 0.2, 0.7]]))
    reference = verify.Reference(np.zeros((2, 3, 4, 4), np.float32), want.astype(np.float32))
    tie = np.log(np.array([[0.49995, 0.5, 0.00005], [0.1, 0.2, 0.7]]))
    a = verify.agreement("onnxruntime", "fp32", reference, tie)  # classes 0 and 1 swap
    assert a.top1_agreement == 1.0 and a.max_prob_diff == pytest.approx(5e-5, rel=1e-3)
    assert a.passes()
    far = np.log(np.array([[0.5, 0.4997, 0.0003], [0.1, 0.2, 0.7]]))
    a = verify.agreement("onnxruntime", "fp32", reference, far)
    assert a.top1_agreement == 1.0 and not a.passes()  # 2.5e-4 is more than 1e-4
    assert verify.agreement("onnxruntime", "fp32", reference, far, 1e-3).passes()
    wrong = np.log(np.array([[0.3, 0.6, 0.1], [0.1, 0.2, 0.7]]))
    a = verify.agreement("openvino", "bf16", reference, wrong)
    assert (a.agreeing, a.images, a.passes()) == (1, 2, False)
    nan = np.full((2, 3), np.nan)
    assert verify.agreement("openvino", "fp32", reference, nan).max_prob_diff == float("inf")


def _coarse(flip: bool = False):
    """Tiny with one huge weight shared by every class: logits that are small differences
    of sums near 3e4, as a head trained to huge weights on a few images gives."""
    model = Tiny(flip_when_exported=flip)
    shared = torch.randn(16, generator=torch.Generator().manual_seed(2)) * 3e4
    with torch.no_grad():
        model.fc.weight += shared
    return model


def test_a_model_that_rounds_coarsely_is_held_to_its_own_spread(tmp_path):
    spec = dataclasses.replace(zoo.get_spec("lite0"), temperature=0.1)
    model = _coarse()
    info = run_to_end(export_job(spec, None, tmp_path / "coarse", model=model, limit=LIMIT))
    reference = run_to_end(verify.reference_job(model, spec, LIMIT))
    spread = reference.spread()
    print(f"PyTorch's own spread {spread:.1e}")
    assert spread > 1e-4  # PyTorch's own two fp32 paths differ by more than 1e-4 here
    for a in info.agreements:
        assert a.passes() and a.top1_agreement == 1.0
        allowed = min(verify.SPREAD_FACTOR * spread, sidecar.FP32_MAX_TOLERANCE)
        assert a.tolerance == 1e-4 or a.tolerance == pytest.approx(allowed)
        print(a.describe())
    with pytest.raises(ExportError, match="does not agree"):  # wrong is still wrong
        run_to_end(export_job(spec, None, tmp_path / "wrong", model=_coarse(True), limit=8))


@pytest.mark.slow  # exports a model (once per module or session)
def test_a_damaged_model_file_is_found_cheaply_but_refused_at_load(lite0_export):
    installed = install_export(lite0_export)
    with open(installed.model_path, "r+b") as f:  # one byte changed, same size
        f.seek(installed.model_path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert cache.find_current("lite0") is not None  # stat only: the size is unchanged
    for runtime in RUNTIMES:
        backend = verify.make_backend(runtime, installed.model_path, sha256=installed.sha256)
        with pytest.raises(ExportError, match="damaged"):
            backend.load()
    assert cache.discard("lite0") and cache.find_current("lite0") is None
    assert os.listdir(cache.exports_dir()) == []


def test_without_a_runtime_nothing_is_exported(monkeypatch, tmp_path):
    for name in RUNTIMES:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails
    assert verify.available_runtimes() == ()
    with pytest.raises(ExportError, match="Neither onnxruntime nor openvino"):
        run_to_end(export_job(zoo.get_spec("lite0"), None, tmp_path / "x", model=Tiny()))
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the cache
@pytest.mark.slow  # exports a model (once per module or session)
def test_find_current_finds_an_installed_export_by_any_spelling(lite0_export):
    assert cache.find_current("lite0") is None
    installed = install_export(lite0_export)
    for key in ("lite0", "Lite0", " EfficientNet-Lite0 "):
        found = cache.find_current(key)
        assert found is not None and found.folder == installed.folder == cache.key_folder(key)
        assert found.sha256 == lite0_export.sha256
    assert cache.normalise_key("pets") == "user:pets" == cache.normalise_key("user:pets")
    assert cache.key_folder("user:pets").name == "user_pets"


def _rewrite(info, **changes) -> None:
    file = info.folder / sidecar.INFO
    file.write_text(json.dumps(json.loads(file.read_text()) | changes))


@pytest.mark.slow  # exports a model (once per module or session)
@pytest.mark.parametrize(
    "damage",
    ["model missing", "model resized", "json damaged", "other key", "disagreed", "no checks"],
)
def test_find_current_skips_an_export_that_may_not_be_used(lite0_export, damage):
    installed = install_export(lite0_export)
    if damage == "model missing":
        installed.model_path.unlink()
    elif damage == "model resized":
        with open(installed.model_path, "ab") as f:
            f.write(b"\0")
    elif damage == "json damaged":
        (installed.folder / sidecar.INFO).write_text("{not json")
    elif damage == "other key":
        _rewrite(installed, key="b0")
    elif damage == "disagreed":
        worse = [a.to_dict() | {"max_prob_diff": 0.2} for a in installed.agreements]
        _rewrite(installed, agreements=worse)
    else:
        _rewrite(installed, agreements=[])
    assert cache.find_current("lite0") is None


@pytest.mark.slow  # exports a model (once per module or session)
def test_a_changed_weights_file_makes_the_export_stale(lite0_export, tmp_path):
    installed = install_export(lite0_export)
    copy = tmp_path / "lite0.pth"
    shutil.copy(zoo.get_spec("lite0").bundled_weights(), copy)
    _rewrite(installed, source=sidecar.source_identity(copy))
    assert cache.find_current("lite0") is not None
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    assert cache.find_current("lite0") is None
    copy.unlink()
    assert cache.find_current("lite0") is None


@pytest.mark.slow  # exports a model (once per module or session)
def test_find_current_imports_no_torch(lite0_export, app_home):
    install_export(lite0_export)
    code = textwrap.dedent(
        """
        import sys, time
        from effnet_app.core.export import cache
        start = time.perf_counter()
        info = cache.find_current("lite0")
        took = time.perf_counter() - start
        spec = info.spec()
        assert spec.key == "lite0" and spec.num_classes == 1000 and spec.resolution == 224
        assert "torch" not in sys.modules and "torchvision" not in sys.modules
        print(f"{took * 1000:.1f} ms")
        """
    )
    env = os.environ | {"EFFNET_APP_HOME": str(app_home)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    print("find_current:", done.stdout.strip())


def test_ensure_export_makes_finds_and_replaces_a_stale_export(tmp_path):
    spec = zoo.get_spec("lite0")
    model = Tiny()
    source = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), source)
    events, made = drain(cache.ensure_export(spec, source, model=model, limit=8))
    assert events and made.folder == cache.key_folder("lite0")
    assert cache.find_current("lite0") == made
    events, again = drain(cache.ensure_export(spec, source, model=model, limit=8))
    assert events == [] and again == made  # current: nothing is made
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    events, remade = drain(cache.ensure_export(spec, source, model=model, limit=8))
    assert events and remade.created >= made.created and remade.source != made.source
    assert os.listdir(cache.exports_dir()) == ["lite0"]  # the old one and the part are gone
