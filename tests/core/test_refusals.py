"""A refused export is remembered with its model file and runtimes, and not made again."""

from __future__ import annotations

import os

from effnet_app.core.errors import ExportError, ExportRefused
from effnet_app.core.export import cache, refusals
from effnet_app.core.jobs import run_to_end
from effnet_app.core.models import zoo
from effnet_app.core.runtime import choices, engines
from effnet_app.core.runtime.torch_backend import TorchBackend

REASON = "The exported X does not agree with PyTorch."


def test_a_refusal_is_kept_until_the_file_or_a_runtime_changes(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    runtimes = {"onnxruntime": "1.0"}
    assert refusals.refusal("B0", weights, runtimes) is None
    refusals.remember("B0", weights, runtimes, REASON)
    assert refusals.refusal("b0", weights, runtimes) == REASON  # any spelling of the key
    assert refusals.refusal("b0", weights, {"onnxruntime": "1.1"}) is None  # upgraded
    assert refusals.refusal("b1", weights, runtimes) is None
    os.utime(weights, ns=(1, 1))  # retrained or replaced
    assert refusals.refusal("b0", weights, runtimes) is None


def test_a_garbled_refusals_file_is_no_refusal(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    cache.exports_dir().mkdir(parents=True)
    (cache.exports_dir() / refusals.REFUSED).write_text("{not json")
    assert refusals.refusal("b0", weights, {}) is None
    refusals.remember("b0", weights, {}, REASON)  # and it is replaced by a good one
    assert refusals.refusal("b0", weights, {}) == REASON


def test_only_a_refusal_is_remembered_not_other_failures():
    spec = zoo.get_spec("lite0")
    weights = spec.bundled_weights()
    runtimes = choices.installed_runtimes()
    torch_backend = TorchBackend(spec, "cpu", weights)
    made = engines._fall_back(spec, weights, None, [], torch_backend, ExportError("disk full"))
    assert made.describe().startswith("PyTorch")
    assert refusals.refusal("lite0", weights, runtimes) is None
    engines._fall_back(spec, weights, None, [], torch_backend, ExportRefused(REASON))
    assert refusals.refusal("lite0", weights, runtimes) == REASON


def test_a_remembered_refusal_goes_straight_to_pytorch_with_a_note(monkeypatch):
    monkeypatch.setenv("EFFNET_APP_ENGINE", "auto")
    spec = zoo.get_spec("lite0")
    weights = spec.bundled_weights()
    refusals.remember("lite0", weights, choices.installed_runtimes(), REASON)
    made = run_to_end(engines.classifier_job(spec, weights, "cpu", "auto"))
    assert made.describe().startswith("PyTorch")
    assert any("refused" in note and REASON in note for note in made.notes)
    assert not cache.key_folder("lite0").exists()  # nothing was exported this time
