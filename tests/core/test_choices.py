"""The timed trial: runtimes take turns and keep their best round, batches and single
images are timed apart, and a runtime that fails is left out."""

from __future__ import annotations

import time

import numpy as np
import pytest

from effnet_app.core.jobs import Cancelled, CancelToken
from effnet_app.core.runtime import choices
from effnet_app.core.runtime.backend import RunState


class Work:
    """Real numpy work per image: ``cost`` units in a batch, ``alone`` units for an image
    run alone. ``hiccups``: rounds (0-based) in which something else took the CPU."""

    def __init__(self, cost, alone=None, hiccups=(), fails_in=None):
        self.cost, self.alone = cost, alone or cost
        self.hiccups, self.fails_in = set(hiccups), fails_in
        self.round, self.last = -1, 0.0
        self.matrix = np.random.default_rng(0).random((64, 64))

    def run(self, batch, state=None):
        state = state or RunState.whole(batch)
        if time.perf_counter() - self.last > 0.02:  # a new turn: others ran in between
            self.round += 1
        if self.round == self.fails_in:
            raise RuntimeError("simulated runtime failure")
        if self.round in self.hiccups:
            time.sleep(0.02)
        for _ in range(len(batch) * (self.alone if state.alone else self.cost)):
            self.matrix @ self.matrix
        self.last = time.perf_counter()
        return np.zeros((len(batch), 10), np.float32)


SAMPLE = np.zeros((8, 3, 8, 8), np.float32)


@pytest.fixture(autouse=True)
def short_trial(monkeypatch):
    monkeypatch.setattr(choices, "TRIAL_SECONDS", 0.45)


def test_each_runtime_keeps_its_best_round_so_slow_turns_do_not_decide():
    clean = choices.time_backend(Work(10), SAMPLE[:4], seconds=0.1)
    # "fast" is six times cheaper but lost two of its three turns to another program.
    found = choices.measure({"fast": Work(10, hiccups={0, 1}), "slow": Work(60)}, SAMPLE, "fp32")
    assert found.backend == "fast" and found.rates["fast"] > 2 * found.rates["slow"]
    # Its best round, not its mean (the hiccups cost most of those two rounds).
    assert found.rates["fast"] > 0.5 * clean
    assert 2 <= found.batch <= len(SAMPLE) and found.precision == "fp32" and found.measured


def test_single_images_are_timed_apart_and_may_go_to_another_runtime():
    candidates = {"batches": Work(10, alone=60), "one": Work(30, alone=10)}
    found = choices.measure(candidates, SAMPLE, "fp32")
    assert (found.backend, found.single, found.single_backend) == ("batches", "one", "one")
    assert found.single_rates["one"] > 2 * found.single_rates["batches"]
    assert "one image on one" in found.describe()
    again = choices.Choice.from_dict({k: getattr(found, k) for k in found.__dataclass_fields__})
    assert again == found  # remembered as measured
    same = choices.measure({"a": Work(10), "b": Work(60)}, SAMPLE, "fp32")
    assert same.single == "" and same.single_backend == "a"


@pytest.mark.parametrize(("faster", "moves"), [(0.99, False), (1.01, True)])
def test_single_images_move_only_to_a_runtime_clearly_faster_alone(monkeypatch, faster, moves):
    """Just under SPLIT_MARGIN times faster alone: batches' runtime runs both.

    The rounds' rates are given (two real runtimes this close are a coin toss when
    another process shares the cores); the decision is the real ``measure``'s.
    """
    alone = {"a": 20.0, "b": 20.0 * choices.SPLIT_MARGIN * faster}
    rounds = iter([{"a": 30.0, "b": 10.0}, alone])
    monkeypatch.setattr(choices, "timed_rounds", lambda candidates, batch_for, cancel: next(rounds))
    found = choices.measure({"a": Work(10), "b": Work(30)}, SAMPLE, "fp32")
    assert found.backend == "a" and found.single_rates == {k: round(v, 1) for k, v in alone.items()}
    assert (found.single, found.single_backend) == (("b", "b") if moves else ("", "a"))


def test_only_named_runtimes_of_the_winners_precision_are_timed_alone():
    candidates = {"torch": Work(10, alone=1), "x": Work(30), "x-bf16": Work(40, alone=1)}
    found = choices.measure(candidates, SAMPLE, "fp32", single=["x", "x-bf16"])
    assert found.backend == "torch" and set(found.single_rates) == set()  # only x qualifies
    bf16 = choices.measure({"x": Work(30), "x-bf16": Work(10)}, SAMPLE, "bf16")
    assert bf16.backend == "x-bf16" and bf16.single == ""


def test_a_runtime_failing_in_a_later_round_is_left_out():
    found = choices.measure({"flaky": Work(1, fails_in=1), "steady": Work(30)}, SAMPLE, "fp32")
    assert found.backend == "steady" and set(found.rates) == {"steady"}
    with pytest.raises(ValueError, match="no runtime"):
        choices.measure({"broken": Work(1, fails_in=0)}, SAMPLE, "fp32")


def test_a_cancelled_trial_stops_at_once():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        choices.measure({"any": Work(1)}, SAMPLE, "fp32", token)
