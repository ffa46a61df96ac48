"""The backend interface: torch or numpy batches in, logits out, and a run's own limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effnet_app.core.data.pipeline import DecodePipeline
from effnet_app.core.jobs import NEVER
from effnet_app.core.models import registry
from effnet_app.core.runtime.backend import Backend, RunState, as_numpy, as_torch
from effnet_app.core.runtime.classifier import Classifier, classify_all
from effnet_app.core.runtime.torch_backend import TorchBackend


@pytest.fixture(scope="module")
def lite0() -> TorchBackend:
    backend = TorchBackend(registry.resolve("lite0"), "cpu")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def batch(lite0, sample_photos) -> torch.Tensor:
    pipeline = DecodePipeline.for_preprocess(lite0.spec.preprocess, threads=2)
    photos = [sample_photos["coffee"], sample_photos["chelsea"]]
    return torch.stack([item for _, item in pipeline.run(photos)])


class NumpyLite0(Backend):
    """A backend that speaks numpy only, as ONNX Runtime and OpenVINO do."""

    name = "numpy"
    wants = "numpy"  # the classifier's pipeline makes numpy arrays (Pillow + NumPy)

    def __init__(self, inner: TorchBackend) -> None:
        super().__init__(inner.device)
        self.inner = inner

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def load(self, cancel=NEVER) -> None:
        self.inner.load(cancel)

    def run(self, batch, state=None):
        assert isinstance(batch, np.ndarray) and batch.dtype == np.float32
        return as_numpy(self.inner.run(as_numpy(batch), state))


def test_torch_backend_is_named_and_placed(lite0):
    assert lite0.name == "torch" and lite0.device == "cpu" and lite0.loaded
    assert lite0.default_batch_size() == 16
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.model.modules())
    stem = lite0.model.features[0][0].weight
    assert stem.is_contiguous(memory_format=torch.channels_last)


def test_numpy_and_torch_batches_give_the_same_logits(lite0, batch):
    from_torch = lite0.run(batch)
    from_numpy = lite0.run(batch.numpy())
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float32
    assert from_torch.shape == (len(batch), lite0.spec.num_classes)
    assert torch.equal(from_torch, from_numpy)


def test_a_batch_over_the_runs_limit_runs_in_pieces(lite0, batch):
    state = RunState(batch_size=1)
    pieces = lite0.run(batch, state)
    torch.testing.assert_close(pieces, lite0.run(batch), rtol=1e-4, atol=1e-4)
    assert state.batch_size == 1 and state.take_notes() == ()


def test_a_numpy_backend_classifies_like_the_torch_one(lite0, sample_photos):
    files = [sample_photos["chelsea"], sample_photos["coffee"]]
    spec = lite0.spec
    by_torch = classify_all(Classifier(spec, "cpu", backend=lite0), files, top_k=3)
    by_numpy = classify_all(Classifier(spec, "cpu", backend=NumpyLite0(lite0)), files, top_k=3)
    assert [r.path for r in by_numpy] == files
    assert [[p.label for p in r.predictions] for r in by_numpy] == [
        [p.label for p in r.predictions] for r in by_torch
    ]
    assert by_numpy[1].top1.label == "espresso"


def test_run_state_lowers_only_down_and_hands_notes_over_once():
    state = RunState(16)
    state.lower_batch_size(8, "first")
    state.lower_batch_size(12, "second")  # never raised again within a run
    assert state.batch_size == 8
    assert state.take_notes() == ("first", "second") and state.take_notes() == ()
    state.lower_batch_size(0, "third")
    assert state.batch_size == 1


def test_conversions_share_cpu_memory():
    array = np.zeros((2, 3), dtype=np.float32)
    tensor = as_torch(array)
    tensor[0, 0] = 5.0
    assert array[0, 0] == 5.0
    assert as_numpy(tensor) is not None and as_numpy(tensor)[0, 0] == 5.0
    assert as_torch(tensor) is tensor and as_numpy(array) is array
