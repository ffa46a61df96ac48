"""CUDA: PyTorch with fp16 autocast, checked against fp32. Skipped without a GPU."""

from __future__ import annotations

import pytest

from effnet_app.core.devices import cuda_status
from effnet_app.core.runtime.classifier import classify_all
from effnet_app.core.runtime.session import Session

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(cuda_status()[0] == 0, reason="no CUDA GPU here"),
]


def test_cuda_runs_fp16_with_the_cpu_answers(sample_photos):
    photos = list(sample_photos.values())
    session = Session(backend="auto")
    gpu = session.classifier("lite0", "cuda")
    cpu = session.classifier("lite0", "cpu")
    fast, exact = classify_all(gpu, photos), classify_all(cpu, photos)
    assert gpu.backend.precision == "fp16"  # agreed with fp32 on the reference photos
    assert "fp16 on cuda" in gpu.describe()
    for a, b in zip(fast, exact, strict=True):
        assert a.top1.label == b.top1.label
        assert abs(a.top1.probability - b.top1.probability) < 0.02


def test_auto_on_cuda_uses_torch(sample_photos):
    events = list(Session(backend="auto").classify("lite0", "cuda", [sample_photos["coffee"]]))
    engines = {e.engine for e in events if e.stage == "classifying"}
    assert engines == {"PyTorch fp16 on cuda:0"}
