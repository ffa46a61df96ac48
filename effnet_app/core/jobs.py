"""What every long job shares: a cancel token and the progress event it yields.

A job is a generator: it yields events (``Progress`` or richer frozen dataclasses),
checks ``cancel.raise_if_cancelled()`` at each step, and returns its result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a job when its token was cancelled."""


class CancelToken:
    """A thread-safe flag shared by the job and whoever may stop it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when cancelled meanwhile."""
        return self._event.wait(seconds)


NEVER = CancelToken()  # a token nobody cancels, for callers that do not need one


@dataclass(frozen=True)
class Progress:
    """One step of a long job.

    ``done`` and ``total`` count in ``unit`` (images, bytes, batches); ``total`` is None
    when unknown. ``rate`` is units per second, ``eta`` seconds left, when known.
    """

    done: int
    total: int | None = None
    message: str = ""
    unit: str = ""
    rate: float | None = None
    eta: float | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class RateMeter:
    """Turns counts into Progress events with a smoothed rate and an ETA."""

    def __init__(self, total: int | None, unit: str, clock=time.monotonic) -> None:
        self.total = total
        self.unit = unit
        self._clock = clock
        self._start = clock()

    def progress(self, done: int, message: str = "") -> Progress:
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = done / elapsed if done else None
        eta = None
        if rate and self.total is not None:
            eta = max(0.0, (self.total - done) / rate)
        return Progress(done, self.total, message, self.unit, rate, eta)


Job = Generator[object, None, T]


def run_to_end(job: Job[T]) -> T:
    """Run a job, dropping its events, and return its result (for scripts and tests)."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


def relay(job: Job[T], convert: Callable[[object], object]) -> Job[T]:
    """Run ``job`` inside the caller's job: yield ``convert(event)`` for each of its
    events (None drops one) and return its result. ``job`` is closed with the caller,
    so cancelling the outer job stops the inner one at once."""
    with closing(job):
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                return stop.value
            converted = convert(event)
            if converted is not None:
                yield converted
