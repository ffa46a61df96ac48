"""Runs one classification at a time; a new request cancels the old one.

Each run gets a generation number; anything a cancelled run still emits carries an old
number and is dropped here, so a stale result (or a stale "cancelled") never reaches the
view. The request of the last run is kept, so that a run that failed can be run again
as it was, on another device or with another model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from ..workers import Worker

log = logging.getLogger(__name__)

GENERATION = "generation"  # the Worker's dynamic property: the run it belongs to


@dataclass(frozen=True)
class ClassifyRequest:
    """What one run classifies, with which model, where."""

    paths: tuple[str, ...]
    model_key: str
    device: str
    top_k: int = 5


class ClassifyController(QObject):
    run_started = Signal(int)  # generation
    batch_arrived = Signal(object)  # PredictionBatch of the current run
    progressed = Signal(object)  # Progress (loading messages) of the current run
    noted = Signal(object)  # tuple[str, ...]: what loading said the user should know
    run_finished = Signal(int)  # images classified
    run_cancelled = Signal()
    run_failed = Signal(object)  # the exception

    def __init__(self, session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.generation = 0
        self.worker: Worker | None = None  # the current run's, until it ends
        self.request: ClassifyRequest | None = None  # of the last run started
        self.failed: ClassifyRequest | None = None  # the last run, when it failed

    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def last_paths(self) -> list[str]:
        return list(self.request.paths) if self.request is not None else []

    def start(self, paths: list[str], model_key: str, device: str, top_k: int = 5) -> int:
        return self.run(ClassifyRequest(tuple(paths), model_key, device, top_k))

    def run(self, request: ClassifyRequest) -> int:
        self.cancel()
        self.generation += 1
        generation = self.generation
        self.request, self.failed = request, None
        worker = Worker(
            self.session.classify,
            request.model_key,
            request.device,
            list(request.paths),
            request.top_k,
            parent=self,
        )
        worker.setProperty(GENERATION, generation)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.cancelled.connect(self._on_worker_cancelled)
        worker.errored.connect(self._on_worker_errored)
        worker.ended.connect(self._on_worker_ended)
        self.worker = worker
        self.run_started.emit(generation)
        worker.start()
        return generation

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def discard(self) -> None:
        """Cancel the run and drop all it still sends: its rows were cleared away."""
        self.cancel()
        self.generation += 1
        self.request = self.failed = None

    def _current(self) -> bool:
        """Whether the Worker that sent this signal runs the newest generation."""
        sender = self.sender()
        return sender is not None and sender.property(GENERATION) == self.generation

    def _on_worker_yielded(self, event: object) -> None:
        if not self._current():
            return
        if event.stage == "loading":
            if event.notes:  # a faster engine that could not be used, and why
                self.noted.emit(tuple(event.notes))
            self.progressed.emit(event.progress)
        else:
            self.batch_arrived.emit(event)

    def _on_worker_returned(self, done: object) -> None:
        if self._current():
            self.run_finished.emit(int(done or 0))

    def _on_worker_cancelled(self, _exc: object) -> None:
        if self._current():
            self.run_cancelled.emit()

    def _on_worker_errored(self, exc: object) -> None:
        if self._current():
            log.warning("classification failed: %s", exc)
            self.failed = self.request
            self.run_failed.emit(exc)

    def _on_worker_ended(self) -> None:
        if self.sender() is self.worker:
            self.worker = None  # it deletes itself; a newer run may have replaced it already
