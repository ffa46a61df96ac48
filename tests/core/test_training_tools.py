"""The wizard's tools: estimate, compare, the unsaved preview, saving, importing bundles.

Real images (tests/datasets.py shapes, scikit-image photos) and the real Lite0 (and
Lite1) ImageNet weights that ship in a package.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from datasets import make_shapes

from effnet_app.core import paths, training
from effnet_app.core.data import dataset as datasets
from effnet_app.core.data.pipeline import DecodePipeline
from effnet_app.core.errors import DatasetError, ModelError
from effnet_app.core.jobs import Cancelled, CancelToken, Progress, run_to_end
from effnet_app.core.models import bundle, registry, zoo
from effnet_app.core.runtime.classifier import Classifier, classify_all
from effnet_app.core.training import tools
from effnet_app.core.training.config import TrainConfig, TrainMessage, TrainPhase
from effnet_app.core.training.trainer import train

FAST = TrainConfig(base="lite0", device="cpu", val_fraction=0.3, folds=3, batch_size=16)


def drain(job) -> tuple[list, object]:
    """(every event, the result) of a job."""
    events: list = []
    try:
        while True:
            events.append(next(job))
    except StopIteration as stop:
        return events, stop.value


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """36 coloured shapes in three classes, scanned."""
    root = make_shapes(tmp_path_factory.mktemp("tools") / "shapes", per_class=12, size=64)
    return run_to_end(datasets.scan(root))


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """One head-mode run on the shapes, trained once for the module (own app home)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EFFNET_APP_HOME", str(tmp_path_factory.mktemp("train_home")))
        return run_to_end(train(FAST, shapes))


@pytest.fixture
def decoded(monkeypatch):
    """Every path handed to a decode pipeline from now on."""
    asked: list[Path] = []
    run = DecodePipeline.run

    def recording(self, paths, *args, **kwargs):
        paths = [Path(p) for p in paths]
        asked.extend(paths)
        return run(self, paths, *args, **kwargs)

    monkeypatch.setattr(DecodePipeline, "run", recording)
    return asked


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """A private, empty torch hub cache: B0..B7 have no weights here."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


# --------------------------------------------------------------------------- estimate
@pytest.mark.slow
def test_estimate_times_at_most_8_of_the_users_images(shapes, decoded):
    events, found = drain(tools.estimate("lite0", shapes, device="cpu"))
    assert isinstance(found, tools.Estimate)
    assert (found.base, found.device, found.images_measured) == ("lite0", "cpu", 8)
    assert len(decoded) <= 8 and set(decoded) <= {s.path for s in shapes.samples}
    assert len({p.parent.name for p in decoded}) == 3  # spread over the classes
    for value in (found.ms_per_image, found.seconds_head, found.seconds_per_epoch):
        assert math.isfinite(value) and value > 0
    n = len(shapes.samples)
    assert found.seconds_head >= n * found.ms_per_image / 1000  # decoding comes on top
    # An epoch trains on most images (forward and backward) and only runs the rest.
    assert found.seconds_per_epoch > (n - 11) * found.ms_per_image / 1000
    assert all(isinstance(e, Progress) for e in events) and events[-1].fraction == 1.0


def test_estimate_of_images_that_cannot_be_read_is_a_sentence(shapes, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    unreadable = replace(shapes, samples=tuple(replace(s, path=broken) for s in shapes.samples))
    with pytest.raises(DatasetError, match="could be read"):
        run_to_end(tools.estimate("lite0", unreadable, device="cpu"))


def test_validation_size_follows_the_fraction_or_the_val_folder(shapes):
    assert tools._validation_size(shapes, 0.3) == 11
    assert tools._validation_size(shapes, 0.01) == 3  # one per class at least
    fixed = replace(shapes, fixed_val=frozenset({0, 1, 12, 24, 25}))
    assert tools._validation_size(fixed, 0.3) == 5


# --------------------------------------------------------------------------- compare
@pytest.mark.slow
def test_compare_skips_a_base_without_weights_with_a_warning(shapes, no_hub):
    events, points = drain(tools.compare(["lite0", "b0"], shapes, replace(FAST, mode="finetune")))
    assert [p.base for p in points] == ["lite0"]
    (point,) = points
    assert point.name == "EfficientNet-Lite0" and point.accuracy > 0.9
    assert point.train_size + point.val_size == len(shapes.samples)
    assert point.ms_per_image > 0
    warnings = [e for e in events if isinstance(e, TrainMessage) and e.level == "warning"]
    assert len(warnings) == 1 and "EfficientNet-B0 was left out" in warnings[0].text
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and all(e.message.startswith("EfficientNet-Lite0 (1 of 2): ") for e in progress)
    assert not any(isinstance(e, TrainPhase) and e.name == "finetune" for e in events)
    assert events.index(point) < events.index(warnings[0])  # each point as soon as it is done


@pytest.mark.slow
def test_compare_trains_each_base_and_reports_accuracy_and_speed(shapes):
    lite1 = zoo.get_spec("lite1")
    if lite1.bundled_weights() is None:
        pytest.skip("EfficientNet-Lite1 weights are not installed")
    events, points = drain(tools.compare(["lite0", "lite1"], shapes, FAST))
    assert [p.base for p in points] == ["lite0", "lite1"]
    assert [p.name for p in points] == ["EfficientNet-Lite0", "EfficientNet-Lite1"]
    for point in points:
        assert point.accuracy > 0.9 and point.ms_per_image > 0
        assert point.train_size + point.val_size == len(shapes.samples)
    first_lite1 = next(i for i, e in enumerate(events) if "Lite1 (2 of 2)" in str(e))
    assert events.index(points[0]) < first_lite1
    assert not any(isinstance(e, TrainMessage) and e.level == "warning" for e in events)


@pytest.mark.slow
def test_a_cancelled_comparison_stops_without_a_point(shapes):
    token = CancelToken()
    token.cancel()
    job = tools.compare(["lite0", "lite1"], shapes, FAST, token)
    with pytest.raises(Cancelled):
        while not isinstance(next(job), tools.ComparePoint):
            pass


# --------------------------------------------------------------------------- preview
@pytest.mark.slow
def test_the_preview_classifies_as_the_saved_bundle_does(trained, shapes, sample_photos):
    # Photos are no shapes: their logits differ by hundreds, so at the fitted temperature
    # every answer is 100 % sure. Softened (the bundle keeps what the result says), the
    # probabilities are numbers worth comparing.
    soft = replace(trained, temperature=200.0, unknown_threshold=0.5)
    preview = tools.preview_classifier(soft)
    spec = preview.spec
    assert (spec.key, spec.name, spec.bundle_path) == ("unsaved", "New model (not saved)", None)
    assert spec.categories == trained.classes and spec.temperature == 200.0
    assert spec.unknown_threshold == 0.5 and spec.family == "trained"
    saved = tools.save_result(soft, "shapes", shapes)
    loaded = Classifier(registry.resolve(saved.key), "cpu")
    photos = sorted(sample_photos.values())
    shown = classify_all(preview, photos, top_k=3)
    truth = classify_all(loaded, photos, top_k=3)
    assert [r.path for r in shown] == [r.path for r in truth] == photos
    for a, b in zip(shown, truth, strict=True):
        got = {p.label: p.probability for p in a.predictions}
        want = {p.label: p.probability for p in b.predictions}
        assert got.keys() == want.keys() == set(trained.classes)
        for label in want:
            assert abs(got[label] - want[label]) <= 1e-4
        assert a.unsure == b.unsure
    assert any(0.01 < p.probability < 0.99 for r in truth for p in r.predictions)


@pytest.mark.slow
def test_try_images_shows_the_trained_classes_and_the_unsure_ones(trained, sample_photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a JPEG")
    files = [*sorted(sample_photos.values()), broken]
    sure = replace(trained, temperature=200.0, unknown_threshold=0.0)  # see the test above
    rows = [r for batch in tools.try_images(sure, files, top_k=2) for r in batch.results]
    assert [r.path for r in rows] == files
    assert rows[-1].problem and not rows[-1].predictions
    tops = [r.top1.probability for r in rows[:-1]]
    assert len(set(tops)) > 1 and max(tops) < 1.0
    assert all(len(r.predictions) == 2 for r in rows[:-1])
    assert all(r.top1.label in trained.classes for r in rows[:-1])
    assert not any(r.unsure for r in rows)
    # A threshold between the probabilities flags exactly the ones below it.
    threshold = float(np.median(tops))
    unsure = replace(sure, unknown_threshold=threshold)
    again = [r for batch in training.try_images(unsure, files) for r in batch.results]
    assert [r.unsure for r in again[:-1]] == [p < threshold for p in tops]
    assert any(r.unsure for r in again) and not all(r.unsure for r in again[:-1])


def test_images_in_cell_lists_the_rows_with_that_label_and_guess():
    rows = [
        {"path": "a.png", "label": 0, "predicted": 0},
        {"path": Path("b.png"), "label": 0, "predicted": 1},
        {"path": "c.png", "label": 1, "predicted": 0},
        {"path": "d.png", "label": 0, "predicted": 1},
    ]
    assert tools.images_in_cell(rows, 0, 1) == [Path("b.png"), Path("d.png")]
    assert tools.images_in_cell(rows, 1, 0) == [Path("c.png")]
    assert tools.images_in_cell(rows, 1, 1) == []


@pytest.mark.slow
def test_the_cells_of_a_real_confusion_matrix_hold_its_images(trained):
    n = len(trained.classes)
    seen = []
    for i in range(n):
        for j in range(n):
            cell = training.images_in_cell(trained.val_predictions, i, j)
            assert len(cell) == trained.confusion[i][j]
            seen += cell
    assert sorted(seen) == sorted(Path(r["path"]) for r in trained.val_predictions)


# --------------------------------------------------------------------------- save
@pytest.mark.slow
def test_save_result_writes_the_bundle_with_the_excluded_files(trained, shapes):
    left_out = [shapes.samples[0].path]
    saved = training.save_result(trained, "shapes", shapes, excluded=left_out)
    manifest = json.loads((saved.path / bundle.MANIFEST).read_text())
    assert manifest["dataset"]["excluded"] == [str(left_out[0])]
    assert manifest["dataset"]["classes"] == list(shapes.classes)
    assert manifest["training"] == FAST.to_dict()
    assert manifest["metrics"]["accuracy"] == trained.accuracy
    assert (saved.base, saved.classes) == ("lite0", trained.classes)
    with pytest.raises(ModelError, match="already exists"):
        tools.save_result(trained, "shapes", shapes)
    assert tools.save_result(trained, "shapes", shapes, replace=True).path == saved.path


def test_the_training_package_loads_its_tools_without_torch():
    code = (
        "import sys\n"
        "from effnet_app.core import training\n"
        "assert 'torch' not in sys.modules\n"
        "from effnet_app.core.training import tools\n"
        "assert training.Estimate is tools.Estimate\n"
        "assert training.ComparePoint is tools.ComparePoint\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- import
@pytest.fixture(scope="module")
def lite0_state():
    return zoo.get_spec("lite0").build(num_classes=3).state_dict()


def saved_elsewhere(folder: Path, state, name: str = "given") -> bundle.Bundle:
    spec = zoo.get_spec("lite0")
    return bundle.save_bundle(
        name, state, base="lite0", classes=("circle", "square", "triangle"),
        preprocess=spec.preprocess, temperature=1.5, unknown_threshold=0.4, folder=folder,
    )  # fmt: skip


def models_listing() -> list[str]:
    folder = paths.models_dir()
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_import_copies_a_bundle_into_the_models_folder(tmp_path, lite0_state):
    source = saved_elsewhere(tmp_path / "usb", lite0_state)
    found = bundle.import_bundle(source.path)
    assert found.path == paths.models_dir() / "given" and found.key == "user:given"
    assert models_listing() == ["given"]  # no part folder left behind
    assert (found.path / bundle.WEIGHTS).read_bytes() == (source.path / bundle.WEIGHTS).read_bytes()
    assert (found.classes, found.temperature) == (source.classes, 1.5)
    assert registry.resolve("user:given").categories == source.classes
    assert source.path.is_dir()  # a copy: the original stays
    renamed = bundle.import_bundle(source.path, name="shapes-copy")
    assert renamed.name == "shapes-copy"
    manifest = json.loads((renamed.path / bundle.MANIFEST).read_text())
    assert manifest["name"] == "shapes-copy"
    assert bundle.load_state_dict(bundle.read_bundle(renamed.path)).keys() == lite0_state.keys()


def test_import_refuses_a_damaged_bundle(tmp_path, lite0_state):
    source = saved_elsewhere(tmp_path / "usb", lite0_state)
    file = source.path / bundle.WEIGHTS
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum") as caught:
        bundle.import_bundle(source.path)
    assert str(source.path) in caught.value.sentence
    assert models_listing() == []


def test_import_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ModelError, match="not a trained model folder"):
        bundle.import_bundle(tmp_path / "photos")
    assert models_listing() == []


def test_import_refuses_a_taken_name_unless_replace(tmp_path, lite0_state):
    first = saved_elsewhere(tmp_path / "a", lite0_state)
    bundle.import_bundle(first.path)
    other = dict(lite0_state)
    other["classifier.1.bias"] = other["classifier.1.bias"] + 1.0
    second = saved_elsewhere(tmp_path / "b", other)
    with pytest.raises(ModelError, match="already exists"):
        bundle.import_bundle(second.path)
    assert bundle.find_bundle("given").weights_sha256 == first.weights_sha256
    swapped = bundle.import_bundle(second.path, replace=True)
    assert swapped.weights_sha256 == second.weights_sha256 != first.weights_sha256
    assert models_listing() == ["given"]
    with pytest.raises(ModelError, match="already one of your trained models"):
        bundle.import_bundle(swapped.path, replace=True)
    with pytest.raises(ModelError, match="cannot be a model name"):
        bundle.import_bundle(second.path, name="a/b")
