"""ONNX Runtime and OpenVINO on real exports of Lite0 (real weights) and B0, against torch.

The models are exported here with torch's exporter, once for the module, so these tests
check the backends alone (the app's export job has its own tests).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from effnet_app.core.errors import ExportError
from effnet_app.core.models import registry, zoo
from effnet_app.core.runtime import cpu, onnx_backend
from effnet_app.core.runtime.backend import RunState
from effnet_app.core.runtime.classifier import Classifier, classify_all, probabilities
from effnet_app.core.runtime.onnx_backend import OnnxRuntimeBackend
from effnet_app.core.runtime.openvino_backend import PERFORMANCE_HINT, OpenVinoBackend
from effnet_app.core.runtime.reference import reference_batch

RUNTIMES = {"onnxruntime": OnnxRuntimeBackend, "openvino": OpenVinoBackend}


def _calibrated_b0():
    """B0 with seeded weights and BatchNorm statistics measured on real photos: straight
    from its initialiser every image gets nearly the same logits, and agreement would
    mean nothing."""
    spec = zoo.get_spec("b0")
    torch.manual_seed(0)
    model = spec.build()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(reference_batch(spec.preprocess, limit=32)))
    return model.eval()


def _export(model, resolution: int, path: Path) -> Path:
    x = torch.zeros(2, 3, resolution, resolution)
    torch.onnx.export(
        model,
        (x,),
        str(path),
        dynamo=True,
        opset_version=18,
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        input_names=["input"],
        output_names=["logits"],
        external_data=False,
        verbose=False,
    )
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """key -> (spec, the torch model, its .onnx file), exported once for the module."""
    folder = tmp_path_factory.mktemp("exports")
    lite0 = registry.resolve("lite0")
    models = {"lite0": registry.load_network(lite0).eval(), "b0": _calibrated_b0()}
    out = {}
    for key, model in models.items():
        spec = zoo.get_spec(key)
        out[key] = (spec, model, _export(model, spec.resolution, folder / f"{key}.onnx"))
    return out


def _photo_batch(preprocess, count: int) -> np.ndarray:
    """Real photos (the shipped references, crops and mirrors, plus skimage's) as numpy."""
    extra = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in ("coffee", "chelsea")]
    shipped = reference_batch(preprocess, limit=max(0, count - len(extra)))
    return np.concatenate([np.stack([preprocess.apply_numpy(i) for i in extra]), shipped])


def _torch_logits(model, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(batch)).numpy()


@pytest.fixture(scope="module")
def loaded(exported) -> dict:
    out = {}
    for key, (_, _, path) in exported.items():
        for name, kind in RUNTIMES.items():
            backend = kind(path)
            backend.load()
            out[key, name] = backend
    return out


@pytest.mark.parametrize("runtime", list(RUNTIMES))
@pytest.mark.parametrize("key", ["lite0", "b0"])
def test_runtime_agrees_with_torch_fp32(exported, loaded, key, runtime):
    spec, model, _ = exported[key]
    batch = _photo_batch(spec.preprocess, 16)
    want = probabilities(_torch_logits(model, batch))
    backend = loaded[key, runtime]
    for size in (1, 5, 16):  # each batch size is a new input shape for the runtime
        logits = backend.run(batch[:size], RunState(16))
        assert isinstance(logits, np.ndarray) and logits.dtype == np.float32
        assert logits.shape == (size, spec.num_classes)
        got = probabilities(logits)
        assert np.abs(got - want[:size]).max() <= 1e-4, (key, runtime, size)
        assert np.array_equal(got.argmax(1), want[:size].argmax(1)), (key, runtime, size)
    if key == "lite0":  # real weights: real answers
        labels = [spec.categories[i] for i in want[:2].argmax(1)]
        assert labels[0] in {"espresso", "cup", "coffee mug"} and "cat" in labels[1]


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_a_small_batch_limit_runs_in_pieces_with_the_same_results(exported, loaded, runtime):
    spec, _, _ = exported["lite0"]
    batch = _photo_batch(spec.preprocess, 7)
    whole = loaded["lite0", runtime].run(batch)
    state = RunState(batch_size=3)  # 3 + 3 + 1
    pieces = loaded["lite0", runtime].run(torch.from_numpy(batch), state)  # torch in works too
    np.testing.assert_allclose(pieces, whole, rtol=1e-4, atol=1e-4)
    assert state.batch_size == 3 and state.take_notes() == ()


@pytest.fixture(scope="module")
def small_arena():
    """ONNX Runtime's shared CPU arena, capped at 100 MB: real allocations that fail.

    Only sessions that ask for it ("session.use_env_allocators") use it. Measured in a
    fresh process: a batch of 16 Lite0 images overruns it, and a batch of 4 fits.
    """
    import onnxruntime as ort

    info = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    ort.create_and_register_allocator(info, ort.OrtArenaCfg(100 * 2**20, -1, -1, -1))
    return {"session.use_env_allocators": "1"}


def test_running_out_of_memory_halves_the_batch_and_goes_on(exported, loaded, small_arena):
    spec, _, path = exported["lite0"]
    batch = _photo_batch(spec.preprocess, 16)
    # One stream, one run at a time: two streams' peaks overlap or not by timing.
    tight = OnnxRuntimeBackend(path, threads=1, session_config=small_arena)
    tight.load()
    state = RunState(16)
    logits = tight.run(batch, state)
    assert state.batch_size < 16
    assert state.take_notes()[0].startswith("Out of memory in ONNX Runtime: batch size lowered")
    np.testing.assert_allclose(logits, loaded["lite0", "onnxruntime"].run(batch), atol=1e-4)
    later = RunState(state.batch_size)  # what fitted fits again, with nothing to say
    tight.run(batch, later)
    assert later.take_notes() == ()


def test_threads_spinning_and_precision_are_set_explicitly(loaded):
    ort_backend = loaded["lite0", "onnxruntime"]
    options = ort_backend.session.get_session_options()
    assert ort_backend.threads == cpu.inference_threads() == ort_backend.streams
    assert options.intra_op_num_threads == 1  # one per stream, a stream per core
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    import openvino as ov

    compiled = loaded["lite0", "openvino"].compiled
    assert compiled.get_property("INFERENCE_NUM_THREADS") == cpu.inference_threads()
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32  # never the default
    assert str(compiled.get_property("PERFORMANCE_HINT")) == PERFORMANCE_HINT
    assert OnnxRuntimeBackend("x.onnx", threads=1).threads == 1


def test_openvino_gives_the_same_logits_with_either_hint(exported, loaded):
    spec, _, path = exported["lite0"]
    latency = OpenVinoBackend(path, performance_hint="LATENCY")
    latency.load()
    assert str(latency.compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
    batch = _photo_batch(spec.preprocess, 5)  # split 3 + 2 over THROUGHPUT's two requests
    throughput = loaded["lite0", "openvino"]
    np.testing.assert_allclose(latency.run(batch), throughput.run(batch), rtol=1e-4, atol=1e-4)
    # A batch of one on a THROUGHPUT backend runs on its own LATENCY model, same logits.
    one = batch[:1]
    np.testing.assert_allclose(throughput.run(one), latency.run(one), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(throughput.run(one), throughput.run(batch)[:1], rtol=1e-4, atol=1e-4)


def _spins(session) -> str:
    return session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")


def test_onnxruntime_runs_an_image_alone_on_a_spinning_session_with_the_same_logits(
    exported, loaded
):
    spec, _, path = exported["lite0"]
    batch = _photo_batch(spec.preprocess, 3)
    fresh = OnnxRuntimeBackend(path, threads=2)
    fresh.load()
    expected = fresh.run(batch)
    fresh.run(batch[:1], RunState(4))  # a folder's last batch of one: not alone
    assert fresh.single_session is None  # batches never open it
    one = fresh.run(batch[:1])  # given alone (no state: a batch of one is alone)
    assert _spins(fresh.single_session) == "1" and _spins(fresh.session) == "0"
    np.testing.assert_allclose(one, expected[:1], rtol=1e-4, atol=1e-4)
    made = fresh.single_session
    fresh.run(batch[1:2])
    assert fresh.single_session is made  # opened once
    # One file on the command line: one spinning session from the start, batches run too.
    alone = OnnxRuntimeBackend(path, threads=2, single_images=True)
    alone.load()
    assert _spins(alone.session) == "1" and alone.streams == 1
    assert alone.session.get_session_options().intra_op_num_threads == 2  # every core
    np.testing.assert_allclose(alone.run(batch), expected, rtol=1e-4, atol=1e-4)
    assert alone.run(batch[:1]).shape == (1, 1000) and alone.single_session is None


def test_onnxruntime_splits_a_batch_over_streams_that_run_at_once(exported, monkeypatch):
    spec, _, path = exported["lite0"]
    batch = _photo_batch(spec.preprocess, 5)
    whole = OnnxRuntimeBackend(path, threads=1)  # one stream, the batch in one run
    whole.load()
    expected = whole.run(batch)
    streams = OnnxRuntimeBackend(path, threads=2)
    seen, lock = [], threading.Lock()
    both_running = threading.Barrier(2, timeout=10)  # breaks unless the parts overlap
    real_forward = onnx_backend._forward_of

    def watched(session):
        forward = real_forward(session)

        def run(part):
            with lock:
                seen.append((len(part), threading.current_thread().name))
            if len(part) > 1:
                both_running.wait()
            return forward(part)

        return run

    monkeypatch.setattr(onnx_backend, "_forward_of", watched)
    streams.load()
    assert streams.default_batch_size() >= streams.streams == 2
    np.testing.assert_allclose(streams.run(batch, RunState(8)), expected, rtol=1e-4, atol=1e-4)
    assert sorted(n for n, _ in seen) == [2, 3]  # 5 images: 3 + 2, at the same time
    assert len({name for _, name in seen}) == 2  # on two threads
    seen.clear()
    streams.run(batch[:1], RunState(8))  # a folder's last image: one stream, this thread
    assert seen == [(1, threading.current_thread().name)]
    streams.run(batch[:1])  # an image alone: the spinning session, every core
    assert streams.single_session.get_session_options().intra_op_num_threads == 2


def test_a_memory_failure_in_any_stream_halves_the_batch(exported, monkeypatch):
    spec, _, path = exported["lite0"]
    batch = _photo_batch(spec.preprocess, 8)
    real_forward = onnx_backend._forward_of
    failing = {}

    def short_of_memory(session):
        forward = real_forward(session)

        def run(part):
            if len(part) > 2 and threading.current_thread().name.startswith(failing["in"]):
                raise RuntimeError("Failed to allocate memory for requested buffer")
            return forward(part)

        return run

    monkeypatch.setattr(onnx_backend, "_forward_of", short_of_memory)
    for where in ("onnxruntime-stream", threading.current_thread().name):  # pool, caller
        failing["in"] = where
        backend = OnnxRuntimeBackend(path, threads=2)
        backend.load()
        state = RunState(8)  # 4 + 4 fails, 2 + 2 fits
        logits = backend.run(batch, state)
        assert state.batch_size == 4, where
        assert state.take_notes() == ("Out of memory in ONNX Runtime: batch size lowered to 4.",)
        np.testing.assert_allclose(logits[:2], backend.run(batch[:2], RunState(8)), atol=1e-5)


@pytest.mark.parametrize("failing_part", [0, 1, 2])
def test_every_stream_is_waited_for_and_the_first_failure_raised(failing_part):
    done = []

    def forward(part):
        if part[0] == failing_part * 2:
            raise RuntimeError(f"part {failing_part}")
        time.sleep(0.2)
        done.append(int(part[0]))
        return part

    run = onnx_backend._in_streams(forward, 3)
    with pytest.raises(RuntimeError, match=f"part {failing_part}"):
        run(np.arange(6.0))
    assert sorted(done) == sorted({0, 2, 4} - {failing_part * 2})  # the others all finished
    np.testing.assert_array_equal(run(np.arange(1.0, 7.0)), np.arange(1.0, 7.0))

    def every_part_fails(part):
        time.sleep(0.05 * (2 - int(part[0]) // 2))  # the first part fails last
        raise RuntimeError(f"part {int(part[0]) // 2}")

    with pytest.raises(RuntimeError, match="part 0"):  # all fail: the first part's wins
        onnx_backend._in_streams(every_part_fails, 3)(np.arange(6.0))


def test_an_image_alone_runs_on_the_batch_session_when_a_second_cannot_open(exported, monkeypatch):
    spec, _, path = exported["lite0"]
    one = _photo_batch(spec.preprocess, 2)[:1]
    backend = OnnxRuntimeBackend(path, threads=2)
    backend.load()
    expected = backend.run(one, RunState(1))
    opened = backend._session

    def short_of_memory(spinning):
        if spinning:
            raise RuntimeError("Failed to allocate memory for requested buffer")
        return opened(spinning)

    monkeypatch.setattr(backend, "_session", short_of_memory)
    np.testing.assert_allclose(backend.run(one), expected, rtol=1e-5, atol=1e-5)
    assert backend.single_session is None and backend._single_failed  # not tried again


def test_names_versions_and_descriptions(loaded, exported):
    ort_backend, ov_backend = loaded["lite0", "onnxruntime"], loaded["lite0", "openvino"]
    assert (ort_backend.name, ort_backend.wants, ort_backend.describe()) == (
        "onnxruntime",
        "numpy",
        "ONNX Runtime fp32",
    )
    assert (ov_backend.name, ov_backend.wants, ov_backend.describe()) == (
        "openvino",
        "numpy",
        "OpenVINO fp32",
    )
    assert OnnxRuntimeBackend.version() == metadata.version("onnxruntime")
    assert OpenVinoBackend.version() == metadata.version("openvino")
    spec = exported["lite0"][0]
    assert Classifier(spec, backend=ov_backend).describe() == "OpenVINO fp32"
    assert Classifier(spec, "cpu").describe() == "PyTorch fp32"


def test_bf16_only_where_the_processor_has_it(exported):
    spec, model, path = exported["lite0"]
    backend = OpenVinoBackend(path, precision="bf16")
    assert backend.describe() == "OpenVINO bf16"
    if not OpenVinoBackend.bf16_supported():
        with pytest.raises(ExportError) as caught:
            backend.load()
        assert "bf16" in caught.value.sentence and cpu.cpu_name() in caught.value.sentence
        assert not backend.loaded
        return
    backend.load()
    assert "bfloat16" in str(backend.compiled.get_property("INFERENCE_PRECISION_HINT"))
    batch = reference_batch(spec.preprocess)
    logits = backend.run(batch, RunState(16))
    assert logits.shape == (len(batch), spec.num_classes) and np.isfinite(logits).all()
    # How often bf16 keeps fp32's top-1 depends on the CPU (94.7 % on this AVX512-BF16
    # EPYC): engines' 99.5 % gate decides whether it is used (tests/core/test_engines.py).
    agreed = logits.argmax(1) == _torch_logits(model, batch).argmax(1)
    assert agreed.mean() > 0.8
    with pytest.raises(ValueError, match="precision"):
        OpenVinoBackend(path, precision="fp16")


def _damaged_copy(path: Path, folder: Path) -> Path:
    copy = folder / "model.onnx"
    shutil.copyfile(path, copy)
    raw = bytearray(copy.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(64)  # weights zeroed: still a well-formed file
    copy.write_bytes(bytes(raw))
    return copy


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_a_damaged_or_missing_model_file_is_refused_at_load(exported, runtime, tmp_path):
    _, _, path = exported["lite0"]
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    RUNTIMES[runtime](path, sha256=sha256).load()  # the intact file passes
    damaged = _damaged_copy(path, tmp_path)
    backend = RUNTIMES[runtime](damaged, sha256=sha256)
    with pytest.raises(ExportError) as caught:
        backend.load()
    assert "damaged" in caught.value.sentence and not backend.loaded
    damaged.write_bytes(path.read_bytes()[:5000])  # cut short, and no hash to compare
    with pytest.raises(ExportError, match="damaged"):
        RUNTIMES[runtime](damaged).load()
    with pytest.raises(ExportError, match="missing"):
        RUNTIMES[runtime](tmp_path / "gone.onnx").load()


def test_openvino_reads_its_own_format_too(exported, loaded, tmp_path):
    import openvino as ov

    spec, _, path = exported["lite0"]
    xml = tmp_path / "model.xml"
    ov.save_model(ov.convert_model(str(path)), str(xml), compress_to_fp16=False)
    backend = OpenVinoBackend(xml)
    backend.load()
    batch = _photo_batch(spec.preprocess, 4)
    np.testing.assert_allclose(
        backend.run(batch), loaded["lite0", "openvino"].run(batch), rtol=1e-4, atol=1e-4
    )


@pytest.fixture(scope="module")
def by_torch(exported, sample_photos) -> list:
    """The sample photos classified by the app's own torch path (top 5)."""
    spec = exported["lite0"][0]
    return classify_all(Classifier(spec, "cpu", batch_size=3), list(sample_photos.values()))


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_a_classifier_on_a_runtime_classifies_like_torch(
    exported, loaded, runtime, sample_photos, by_torch
):
    spec, _, _ = exported["lite0"]
    files = list(sample_photos.values())
    by_runtime = classify_all(
        Classifier(spec, backend=loaded["lite0", runtime], batch_size=3), files
    )
    assert [r.path for r in by_runtime] == files
    for a, b in zip(by_torch, by_runtime, strict=True):
        assert [p.label for p in a.predictions] == [p.label for p in b.predictions], a.path
        for p, q in zip(a.predictions, b.predictions, strict=True):
            assert abs(p.probability - q.probability) <= 1e-4


_TORCH_FREE = """
import json, sys
from effnet_app.core.models.zoo import ModelSpec, Preprocess
from effnet_app.core.runtime.classifier import Classifier, classify_all
from effnet_app.core.runtime.{module} import {kind}

given = json.loads(sys.argv[1])
spec = ModelSpec(key="lite0", name="EfficientNet-Lite0", family="lite",
                 preprocess=Preprocess.from_dict(given["preprocess"]),
                 categories=tuple(given["categories"]), params=0, gflops=None,
                 file_size_mb=None, top1=None, top5=None, width_mult=1.0, depth_mult=1.0,
                 dropout=0.2, feature_dim=1280)
classifier = Classifier(spec, backend={kind}(given["model"], sha256=given["sha256"]))
rows = classify_all(classifier, [given["photo"]], top_k=3)
print(json.dumps({{"labels": [p.label for p in rows[0].predictions],
    "describe": classifier.describe(),
    "torch": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))}}))
"""


@pytest.mark.parametrize(
    "module, kind",
    [("onnx_backend", "OnnxRuntimeBackend"), ("openvino_backend", "OpenVinoBackend")],
)
def test_classifying_on_a_runtime_never_imports_torch(
    exported, module, kind, sample_photos, by_torch
):
    spec, _, path = exported["lite0"]
    given = {
        "preprocess": spec.preprocess.to_dict(),
        "categories": list(spec.categories),
        "model": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "photo": str(sample_photos["coffee"]),
    }
    code = _TORCH_FREE.format(module=module, kind=kind)
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(given)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["torch"] == [], report
    want = next(r for r in by_torch if r.path == sample_photos["coffee"])
    assert report["labels"] == [p.label for p in want.predictions[:3]]
    assert report["describe"].endswith("fp32")


def test_openvino_keeps_its_compiled_model_and_never_uses_a_damaged_one(exported, loaded, app_home):
    from effnet_app.core.runtime.export_backend import file_sha256
    from effnet_app.core.runtime.openvino_backend import BlobCache, _core

    spec, _, path = exported["lite0"]
    digest = file_sha256(path)
    batch = _photo_batch(spec.preprocess, 3)
    expected = loaded["lite0", "openvino"].run(batch)

    def fresh() -> OpenVinoBackend:
        backend = OpenVinoBackend(path, sha256=digest)
        backend.load()
        return backend

    config = fresh().config()
    blobs = BlobCache(path, digest, config)
    recorded, _, data = blobs.path.read_bytes().partition(b"\n")
    assert recorded.decode() == hashlib.sha256(data).hexdigest()
    assert blobs.load(_core(), config) is not None  # what the next process imports
    np.testing.assert_allclose(fresh().run(batch), expected, rtol=1e-4, atol=1e-4)
    # Damaged where OpenVINO would not notice (the weights): not used, compiled again.
    damaged = bytearray(blobs.path.read_bytes())
    middle = len(damaged) // 2
    damaged[middle : middle + 4096] = b"\xff" * 4096
    blobs.path.write_bytes(bytes(damaged))
    assert blobs.load(_core(), config) is None and not blobs.path.exists()
    np.testing.assert_allclose(fresh().run(batch), expected, rtol=1e-4, atol=1e-4)
    assert blobs.load(_core(), config) is not None, "saved again after the compile"
    # Another path to the same model shares the blob; no SHA-256, no blob.
    copy = app_home / "elsewhere.onnx"
    copy.write_bytes(path.read_bytes())
    assert BlobCache(copy, digest, config).path == blobs.path
    assert BlobCache(path, None, config).path is None


def test_an_openvino_blob_is_keyed_by_the_weights_beside_an_xml_too(exported, tmp_path):
    import openvino as ov

    from effnet_app.core.runtime.openvino_backend import BlobCache

    _, _, path = exported["lite0"]
    xml = tmp_path / "model.xml"
    ov.save_model(ov.convert_model(str(path)), str(xml), compress_to_fp16=False)
    before = BlobCache(xml, "same xml", {"a": 1}).path
    weights = xml.with_suffix(".bin")
    data = bytearray(weights.read_bytes())
    data[-4:] = b"\x00\x00\x80\x3f"  # other weights, the same .xml
    weights.write_bytes(bytes(data))
    assert BlobCache(xml, "same xml", {"a": 1}).path != before
    assert BlobCache(xml, "same xml", {"a": 2}).path not in (before, None)
