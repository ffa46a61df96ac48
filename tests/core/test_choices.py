"""The timed trial: runtimes take turns and keep their best round; a failure leaves one out."""

from __future__ import annotations

import time

import numpy as np
import pytest

from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.runtime import choices


class Work:
    """Real numpy work per image, ``cost`` times as much as the cheapest; ``hiccup`` is a
    round (0-based) in which something else took the CPU for a while."""

    def __init__(self, cost: int, hiccup: int | None = None, fails_in: int | None = None):
        self.cost, self.hiccup, self.fails_in = cost, hiccup, fails_in
        self.round, self.last = -1, 0.0
        self.matrix = np.random.default_rng(0).random((96, 96))

    def run(self, batch, state=None):
        now = time.perf_counter()
        if now - self.last > 0.02:  # a new turn (rounds are separated by others' turns)
            self.round += 1
        if self.round == self.fails_in:
            raise RuntimeError("simulated runtime failure")
        if self.round == self.hiccup:
            time.sleep(0.01)
        for _ in range(len(batch) * self.cost):
            self.matrix @ self.matrix
        self.last = time.perf_counter()
        return np.zeros((len(batch), 10), np.float32)


def test_each_runtime_keeps_its_best_round_so_one_slow_turn_does_not_decide(monkeypatch):
    monkeypatch.setattr(choices, "TRIAL_SECONDS", 0.3)
    sample = np.zeros((4, 3, 8, 8), np.float32)
    # "fast" is three times cheaper but lost its first turn to another program.
    found = choices.measure({"fast": Work(10, hiccup=0), "slow": Work(30)}, sample, "fp32")
    assert found.backend == "fast"
    assert found.rates["fast"] > 2 * found.rates["slow"]
    assert found.batch >= 1 and found.precision == "fp32" and found.measured


def test_a_runtime_failing_in_a_later_round_is_left_out(monkeypatch):
    monkeypatch.setattr(choices, "TRIAL_SECONDS", 0.3)
    sample = np.zeros((4, 3, 8, 8), np.float32)
    found = choices.measure({"flaky": Work(1, fails_in=1), "steady": Work(30)}, sample, "fp32")
    assert found.backend == "steady" and set(found.rates) == {"steady"}
    with pytest.raises(ValueError, match="no runtime"):
        choices.measure({"broken": Work(1, fails_in=0)}, sample, "fp32")


def test_a_cancelled_trial_stops_at_once():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        choices.measure({"any": Work(1)}, np.zeros((2, 3, 8, 8), np.float32), "fp32", token)
