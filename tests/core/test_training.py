"""Training engine: head mode end to end on small generated class folders (real Lite0 weights)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from datasets import make_shapes

from effnet_app.core import paths
from effnet_app.core.data import dataset as datasets
from effnet_app.core.data.pipeline import DecodePipeline
from effnet_app.core.errors import ModelError
from effnet_app.core.jobs import Cancelled, CancelToken, Progress, run_to_end
from effnet_app.core.models import bundle, registry
from effnet_app.core.training import calibrate as calib
from effnet_app.core.training import features as feats
from effnet_app.core.training.config import (
    TrainBatch,
    TrainConfig,
    TrainEpoch,
    TrainPhase,
    TrainResult,
)
from effnet_app.core.training.evaluation import evaluate
from effnet_app.core.training.feature_cache import FeatureCache
from effnet_app.core.training.trainer import train

FAST = TrainConfig(base="lite0", device="cpu", val_fraction=0.3, folds=3, batch_size=16)


def scan(root: Path):
    return run_to_end(datasets.scan(root))


def run(config: TrainConfig, ds, cancel: CancelToken | None = None):
    """(events, result) of one training run."""
    events = []
    job = train(config, ds, cancel or CancelToken())
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            return events, stop.value


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("shapes") / "shapes", per_class=12, size=64)


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    original = DecodePipeline.decode

    def counting(self, path):
        calls.append(Path(path))
        return original(self, path)

    monkeypatch.setattr(DecodePipeline, "decode", counting)
    return calls


def metrics_of(result: TrainResult) -> dict:
    summary = result.summary()
    summary.pop("seconds")
    return {**summary, "val_predictions": result.val_predictions}


def cache_files() -> list[Path]:
    root = paths.cache_dir() / "features"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------- head mode
@pytest.mark.slow
def test_head_mode_trains_a_network_that_classifies_easy_shapes(shapes_root):
    ds = scan(shapes_root)
    events, result = run(FAST, ds)
    phases = [e.name for e in events if isinstance(e, TrainPhase)]
    assert phases == ["features", "head", "checks", "calibrate"]
    batches = [e for e in events if isinstance(e, TrainBatch)]
    assert batches and batches[-1].progress.eta is not None
    assert [e.phase for e in events if isinstance(e, TrainEpoch)] == ["head"]
    assert result.classes == ("circle", "square", "triangle")
    assert result.accuracy >= 0.9 and result.accuracy >= result.baseline + 0.4
    assert result.train_size + result.val_size == len(ds.samples) == 36
    assert np.asarray(result.confusion).sum() == result.val_size == len(result.val_predictions)
    assert [c["name"] for c in result.per_class] == list(result.classes)
    assert result.temperature > 0 and 0.0 <= result.unknown_threshold < 1.0
    json.dumps(result.summary())  # the manifest and the CLI need plain JSON

    # The state dict is the whole network: rebuilt and run, it gives the reported probabilities.
    import torch

    spec = registry.resolve("lite0")
    model = spec.build(num_classes=3)
    model.load_state_dict(result.state_dict, strict=True)
    row = result.val_predictions[0]
    x = DecodePipeline.for_preprocess(spec.preprocess).decode(row["path"])
    with torch.inference_mode():
        logits = model.eval()(x[None]).double().numpy()
    probs = np.exp(logits / result.temperature)
    np.testing.assert_allclose(probs[0] / probs.sum(), row["probabilities"], atol=2e-3)


def test_features_are_cached_and_runs_are_reproducible(shapes_root, count_decodes):
    ds = scan(shapes_root)
    count_decodes.clear()  # scanning reads each file too
    _, first = run(FAST, ds)
    assert len(count_decodes) == len(ds.samples)
    count_decodes.clear()
    _, again = run(FAST, ds)
    assert count_decodes == []
    assert metrics_of(again) == metrics_of(first)
    for key in first.state_dict:
        assert torch_equal(first.state_dict[key], again.state_dict[key])
    _, other = run(replace(FAST, head_c=0.3, folds=2, val_fraction=0.25, seed=3), ds)
    assert count_decodes == [] and other.accuracy >= 0.9


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_a_damaged_cache_file_is_rebuilt(shapes_root, count_decodes, monkeypatch):
    monkeypatch.setattr(feats, "CHUNK_IMAGES", 16)  # one file per batch of 16
    ds = scan(shapes_root)
    count_decodes.clear()
    _, first = run(FAST, ds)
    chunks = cache_files()
    assert len(chunks) == 3 and all(p.name.startswith("chunk-") for p in chunks)
    (cache,) = feats.caches_for(registry.resolve("lite0")).values()
    damaged = chunks[0]
    rows = len(cache._read_chunk(damaged)[0])
    data = bytearray(damaged.read_bytes())
    data[-20:] = bytes(20)  # a feature value changed: the checksum no longer matches
    damaged.write_bytes(bytes(data))
    count_decodes.clear()
    _, again = run(FAST, ds)
    assert len(count_decodes) == rows and not damaged.exists()
    assert metrics_of(again) == metrics_of(first)


def test_cancel_while_reading_leaves_only_whole_cache_files(shapes_root, monkeypatch):
    monkeypatch.setattr(feats, "CHUNK_IMAGES", 8)
    ds = scan(shapes_root)
    cancel = CancelToken()
    job = train(FAST, ds, cancel)
    with pytest.raises(Cancelled):
        for event in job:
            if isinstance(event, Progress) and event.done >= 20:
                cancel.cancel()
    files = cache_files()
    assert files and all(p.suffix == ".safetensors" and p.name.startswith("chunk-") for p in files)
    (cache,) = feats.caches_for(registry.resolve("lite0")).values()
    rows = cache.load()  # every file is valid: none is deleted as damaged
    assert len(cache.chunks()) == len(files) and 0 < len(rows) < len(ds.samples)


def test_cancel_mid_epoch_stops_within_a_batch(shapes_root):
    ds = scan(shapes_root)
    config = replace(FAST, head_solver="adamw", epochs=30, batch_size=4)
    cancel = CancelToken()
    after = []
    with pytest.raises(Cancelled):
        for event in train(config, ds, cancel):
            if cancel.cancelled:
                after.append(event)
            if isinstance(event, TrainBatch) and event.progress.done == 10:
                cancel.cancel()
    assert after == []
    before = {p.name for p in cache_files()}
    assert before and all(n.startswith("chunk-") for n in before)


@pytest.mark.slow
def test_adamw_head_also_learns(shapes_root):
    ds = scan(shapes_root)
    events, result = run(replace(FAST, head_solver="adamw", epochs=20), ds)
    assert result.accuracy >= 0.9
    assert sum(isinstance(e, TrainBatch) for e in events) >= 20


# --------------------------------------------------------------------------- checks
@pytest.mark.slow
def test_flipped_labels_rank_as_the_likeliest_issues(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=14, size=64, seed=5)
    moved = [root / "circle" / "circle_03.png", root / "triangle" / "triangle_07.png"]
    targets = [root / "square" / "moved_circle.png", root / "circle" / "moved_triangle.png"]
    for src, dst in zip(moved, targets, strict=True):
        shutil.move(src, dst)
    ds = scan(root)
    # 14 images a class in 1280 dimensions: a stronger L2 penalty than the default
    _, result = run(replace(FAST, head_c=0.1), ds)
    top = {Path(i["path"]).name: i for i in result.label_issues[:2]}
    assert set(top) == {"moved_circle.png", "moved_triangle.png"}
    assert result.classes[top["moved_circle.png"]["suggested"]] == "circle"
    assert result.classes[top["moved_triangle.png"]["given"]] == "circle"
    assert result.classes[top["moved_triangle.png"]["suggested"]] == "triangle"
    scores = [i["score"] for i in result.label_issues]
    assert scores == sorted(scores)
    # Calibration, fitted and measured on out-of-fold logits.
    assert result.temperature > 0
    assert result.ece_after <= result.ece_before + 1e-12


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 1.5, (4000, 4))
    truth = calib.softmax(clean)  # labels drawn from these: calibrated by construction
    labels = np.array([rng.choice(4, p=p) for p in truth])
    logits = clean * 3.0  # then made three times too sure
    fitted = calib.calibrate(logits, labels)
    assert 2.5 < fitted["temperature"] < 3.5
    assert fitted["ece_after"] < fitted["ece_before"] / 2
    # The threshold flags far more wrong than right predictions, and never > 10 % of right ones.
    probs = calib.softmax(logits, fitted["temperature"])
    flagged = probs.max(1) < fitted["threshold"]
    right = probs.argmax(1) == labels
    assert (flagged & ~right).sum() > (flagged & right).sum()
    assert (flagged & right).sum() <= 0.1 * right.sum()


def test_a_model_that_is_never_wrong_flags_nothing():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert calib.choose_threshold(probs, np.array([0, 1, 0])) == 0.0
    assert calib.flag_report(probs, np.array([0, 1, 0]), 0.0) == (0.0, 0)


# --------------------------------------------------------------------------- evaluate
@pytest.mark.slow
def test_evaluate_a_saved_bundle_gives_the_training_figures(shapes_root):
    ds = scan(shapes_root)
    _, result = run(FAST, ds)
    spec = registry.resolve("lite0")
    saved = bundle.save_bundle(
        "shapes", result.state_dict, base="lite0", classes=result.classes,
        preprocess=spec.preprocess, temperature=result.temperature,
        unknown_threshold=result.unknown_threshold, metrics=result.summary(),
    )  # fmt: skip
    val_paths = {str(r["path"]) for r in result.val_predictions}
    val_ds = replace(ds, samples=tuple(s for s in ds.samples if str(s.path) in val_paths))
    found = run_to_end(evaluate(saved.spec(), val_ds, device="cpu"))
    assert found.accuracy == result.accuracy
    assert found.confusion == result.confusion
    got = {str(r["path"]): r["probabilities"] for r in found.predictions}
    for row in result.val_predictions:
        np.testing.assert_allclose(got[str(row["path"])], row["probabilities"], atol=2e-3)


def test_evaluate_refuses_a_model_without_the_classes(shapes_root):
    with pytest.raises(ModelError, match="circle"):
        run_to_end(evaluate("lite0", scan(shapes_root), device="cpu"))


def test_the_feature_cache_refuses_wrong_shapes(tmp_path):
    cache = FeatureCache("k", 4, root=tmp_path)
    digests = ["ab" * 32, "cd" * 32]
    cache.save(digests, np.ones((2, 4), np.float32))
    assert sorted(cache.load()) == digests
    other = FeatureCache("k", 5, root=tmp_path)  # same folder, another width: not trusted
    assert other.load() == {} and other.chunks() == []


# --------------------------------------------------------------------------- fine-tune parts
def test_out_of_memory_halves_the_batch_and_takes_the_same_step():
    import copy

    import torch

    from effnet_app.core.training.finetune import _Trainer

    spec = registry.resolve("lite0")
    torch.manual_seed(0)
    model = spec.build(num_classes=3).eval()
    x, y = torch.randn(8, 3, 64, 64), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    config = replace(FAST, batch_size=8)
    plain = _Trainer(spec, copy.deepcopy(model), config, "cpu")
    squeezed = _Trainer(spec, copy.deepcopy(model), config, "cpu")
    forward = squeezed.model.forward

    def small_batches_only(batch):
        if len(batch) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(batch)

    squeezed.model.forward = small_batches_only
    loss, _ = plain.step(x, y)
    loss_squeezed, _ = squeezed.step(x, y)
    assert squeezed.micro == 2 and len(squeezed.notes) == 2
    assert "batch size lowered to 2" in squeezed.notes[-1]
    assert loss_squeezed == pytest.approx(loss, rel=1e-5)
    pairs = zip(plain.model.parameters(), squeezed.model.parameters(), strict=True)
    grads = [(a.grad, b.grad) for a, b in pairs if a.grad is not None]
    assert grads  # the gradients of the pieces add up to the whole batch's
    for a, b in grads:
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_bn_statistics_stay_frozen_while_fine_tuning():
    import torch

    from effnet_app.core.training.finetune import _freeze_bn, param_groups

    model = registry.resolve("lite0").build(num_classes=3)
    groups = param_groups(model, replace(FAST, finetune_stages=2))
    trainable = {id(p) for g in groups for p in g["params"]}
    assert all(id(p) not in trainable for p in model.features[0].parameters())  # the stem
    assert all(id(p) in trainable for p in model.features[-1].parameters())
    rates = sorted({g["lr"] for g in groups})
    assert max(rates) <= 1e-4 and len(rates) == 4  # head, head conv, two stages
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    model.train()
    _freeze_bn(model)
    model(torch.randn(2, 3, 64, 64) * 5 + 3)
    assert all(not m.training for m in norms)
    for m, old in zip(norms, before, strict=True):
        assert torch.equal(m.running_mean, old)


def test_decoded_images_spill_to_disk_and_are_removed(shapes_root):
    from effnet_app.core.training.decoded import decode_all

    spec = registry.resolve("lite0")
    files = sorted(shapes_root.rglob("*.png"))[:6]
    store = run_to_end(decode_all(spec.preprocess, files, budget_bytes=2 * 3 * 256 * 256))
    assert store.on_disk and store[5].shape == (3, 256, 256) and store[0].dtype == np.uint8
    spilled = list(paths.cache_dir().glob("decoded-*"))
    assert len(spilled) == 1
    store.close()
    assert not spilled[0].exists()
    cancel = CancelToken()
    with pytest.raises(Cancelled):
        for _ in decode_all(spec.preprocess, files * 4, budget_bytes=0, cancel=cancel):
            cancel.cancel()
    assert list(paths.cache_dir().glob("decoded-*")) == []


def test_the_package_functions_survive_their_modules_being_imported():
    """`training.train` once became the submodule after its first call (a name clash)."""
    import types

    import effnet_app.core.training.evaluation
    import effnet_app.core.training.trainer  # noqa: F401
    from effnet_app.core import training

    assert not isinstance(training.train, types.ModuleType)
    assert not isinstance(training.evaluate, types.ModuleType)
