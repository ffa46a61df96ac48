"""Session: one loaded model per (model, device), shared by every job that asks."""

from __future__ import annotations

import pytest

from effnet_app.core.errors import WeightsError
from effnet_app.core.jobs import run_to_end
from effnet_app.core.runtime import catalog
from effnet_app.core.runtime.classifier import PredictionBatch
from effnet_app.core.runtime.session import KEEP_LOADED, Session


def test_same_model_any_spelling_is_one_classifier():
    session = Session()
    first = session.classifier("lite0", "cpu")
    assert session.classifier("LITE0", "cpu") is first
    assert session.classifier("efficientnet-lite0", "cpu") is first


def test_keeps_only_the_most_recent_models():
    session = Session()
    keys = ["lite0", "lite1", "lite2"][: KEEP_LOADED + 1]
    made = [session.classifier(k, "cpu") for k in keys]
    assert session.classifier(keys[-1], "cpu") is made[-1]
    assert session.classifier(keys[0], "cpu") is not made[0]  # evicted, made anew


def test_missing_weights_is_a_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match="not on this computer"):
        Session().classifier("b2", "cpu")


def test_classify_job_loads_then_yields_batches(sample_photos):
    events = []
    job = Session().classify("lite0", "cpu", [sample_photos["coffee"]], top_k=2)
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            assert stop.value == 1
            break
    assert all(isinstance(e, PredictionBatch) for e in events)
    loading = [e for e in events if e.stage == "loading"]
    batches = [e for e in events if e.stage == "classifying"]
    assert loading and all(e.results == () for e in loading)
    assert "Loading" in loading[0].progress.message
    assert events.index(loading[-1]) < events.index(batches[0])
    assert batches[0].results[0].top1.label == "espresso"


def test_catalog_lists_models_and_devices(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    found = run_to_end(catalog.load_catalog())
    assert [m.key for m in found.models][:2] == ["lite0", "b0"]
    lite0, b0 = found.model("lite0"), found.model("b0")
    assert lite0.available and lite0.bundled and "built in" in lite0.summary
    assert not b0.available and "download (20 MB)" in b0.summary
    assert {d.key for d in found.devices} >= {"auto", "cpu"}
