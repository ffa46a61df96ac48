"""Switching models frees the old one: memory does not grow with every switch."""

from __future__ import annotations

import gc
import weakref

import psutil
import pytest

from effnet_app.core.runtime.classifier import classify_all
from effnet_app.core.runtime.session import KEEP_LOADED, Session

pytestmark = pytest.mark.slow


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def test_an_evicted_model_is_freed(sample_photos):
    session = Session(backend="torch")
    first = session.classifier("lite0", "cpu")
    classify_all(first, [sample_photos["coffee"]])
    network = weakref.ref(first.model)
    del first
    for key in ("lite1", "lite2")[:KEEP_LOADED]:
        classify_all(session.classifier(key, "cpu"), [sample_photos["coffee"]])
    gc.collect()
    assert network() is None, "the least recently used model is still in memory"


def test_switching_back_and_forth_five_times_keeps_memory_level(sample_photos):
    session = Session(backend="torch")
    photo = [sample_photos["chelsea"]]

    def use(key: str) -> None:
        rows = classify_all(session.classifier(key, "cpu"), photo)
        assert rows[0].top1 is not None

    use("lite0")
    use("lite2")  # both loaded once: the level every later switch should come back to
    first = _rss()
    for _ in range(5):
        use("lite0")
        use("lite2")
        use("lite1")  # a third model pushes one out each round
    after = _rss()
    assert after <= first * 1.10, (
        f"{after / 2**20:.0f} MB after switching, {first / 2**20:.0f} MB first"
    )
