"""Real data: scikit-learn's digits as class folders, real Lite0 weights (slow)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from datasets import write_digits

from effnet_app.core.data import dataset as datasets
from effnet_app.core.jobs import run_to_end
from effnet_app.core.models import registry
from effnet_app.core.training import features as feats
from effnet_app.core.training.config import TrainConfig, TrainMessage
from effnet_app.core.training.trainer import train

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(base="lite0", device="cpu", val_fraction=0.25, batch_size=32)


def probe_accuracy(ds, config: TrainConfig) -> float:
    """scikit-learn's LogisticRegression on the cached features and the run's own split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    spec = registry.resolve(config.base)
    found = run_to_end(feats.extract(spec, ds.samples, device="cpu"))
    assert found.decoded == 0  # the training run cached every image
    x = found.plain
    groups = datasets.near_duplicate_groups(x)
    split = datasets.split(ds, config.val_fraction, config.seed, groups=groups)
    y = np.array([s.label for s in ds.samples])
    train_rows, val_rows = list(split.train), list(split.val)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe.fit(x[train_rows], y[train_rows])
    return float(probe.score(x[val_rows], y[val_rows]))


def test_digits_head_matches_a_probe_and_fine_tuning_does_not_lose(tmp_path):
    ds = run_to_end(datasets.scan(write_digits(tmp_path / "digits", per_class=50)))
    assert len(ds.classes) == 10 and len(ds.samples) == 500

    started = time.monotonic()
    head = run_to_end(train(CONFIG, ds))
    head_seconds = time.monotonic() - started
    probe = probe_accuracy(ds, CONFIG)
    assert head.accuracy >= probe - 0.01
    assert head.accuracy >= head.baseline + 0.5

    started = time.monotonic()
    events = list_events(train(replace(CONFIG, mode="finetune", epochs=3), ds))
    fine, messages = events
    fine_seconds = time.monotonic() - started
    assert fine.accuracy >= head.accuracy
    assert any("Fine-tuning" in m.text for m in messages)
    print(
        f"\ndigits, {len(ds.samples)} images ({head.train_size} train / {head.val_size} val): "
        f"probe {probe:.3f}, head {head.accuracy:.3f} ({head_seconds:.0f} s), "
        f"fine-tune {fine.accuracy:.3f} kept {fine.kept_phase} ({fine_seconds:.0f} s)"
    )


def list_events(job):
    messages = []
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value, messages
        if isinstance(event, TrainMessage):
            messages.append(event)
