"""Exports made in a child process: the same checked file, cancellable, failures in words."""

from __future__ import annotations

import threading

import pytest

from effnet_app.core.errors import AppError
from effnet_app.core.export import cache
from effnet_app.core.export.sidecar import file_sha256
from effnet_app.core.jobs import Cancelled, CancelToken, run_to_end
from effnet_app.core.models import zoo

pytestmark = pytest.mark.slow


def test_a_child_makes_the_same_checked_export_as_in_process():
    spec = zoo.get_spec("lite0")
    weights = spec.bundled_weights()
    info = run_to_end(cache.ensure_export(spec, weights, limit=8, isolated=True))
    assert info.folder == cache.key_folder(spec.key)
    assert file_sha256(info.folder / "model.onnx") == info.sha256
    assert {a.backend for a in info.agreements} >= {"onnxruntime"}
    assert all(a.top1_agreement == 1.0 for a in info.agreements)
    assert cache.find_current(spec.key) == info
    assert not [p for p in info.folder.parent.iterdir() if p.name != info.folder.name]


def test_cancelling_kills_the_child_and_leaves_no_folder():
    spec = zoo.get_spec("lite0")
    cancel = CancelToken()
    job = cache.ensure_export(spec, spec.bundled_weights(), cancel, limit=8, isolated=True)
    first = next(job)  # the child has started and reported a step
    assert first.total == 3
    threading.Timer(0.2, cancel.cancel).start()
    with pytest.raises(Cancelled):
        for _ in job:
            pass
    assert cache.find_current(spec.key) is None
    assert not list(cache.key_folder(spec.key).parent.iterdir())


def test_a_failure_in_the_child_is_a_sentence(tmp_path):
    spec = zoo.get_spec("lite0")
    damaged = tmp_path / "lite0.pth"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(AppError) as caught:
        run_to_end(cache.ensure_export(spec, damaged, limit=8, isolated=True))
    print(caught.value.sentence)
    assert "lite0.pth" in caught.value.sentence or "Lite0" in caught.value.sentence
    assert "Traceback" not in caught.value.sentence
    assert cache.find_current(spec.key) is None
