"""Runs one classification at a time; a new request cancels the old one.

Each run gets a generation number; anything a cancelled run still emits carries an old
number and is dropped here, so a stale result never reaches the table.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from ..workers import Worker

log = logging.getLogger(__name__)


class ClassifyController(QObject):
    run_started = Signal(int)  # generation
    batch_arrived = Signal(object)  # PredictionBatch of the current run
    progressed = Signal(object)  # Progress (loading messages) of the current run
    run_finished = Signal(int)  # images classified
    run_cancelled = Signal()
    run_failed = Signal(object)  # the exception

    def __init__(self, session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.generation = 0
        self.worker: Worker | None = None
        self.last_paths: list[str] = []

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.is_done

    def start(self, paths: list[str], model_key: str, device: str, top_k: int = 5) -> int:
        self.cancel()
        self.generation += 1
        generation = self.generation
        self.last_paths = list(paths)
        worker = Worker(self.session.classify, model_key, device, list(paths), top_k, parent=self)
        worker.progressed.connect(lambda event: self._on_worker_progressed(generation, event))
        worker.finished.connect(lambda done: self._on_worker_finished(generation, done))
        worker.cancelled.connect(lambda: self._on_worker_cancelled(generation))
        worker.errored.connect(lambda exc: self._on_worker_errored(generation, exc))
        self.worker = worker
        self.run_started.emit(generation)
        worker.start()
        return generation

    def cancel(self) -> None:
        if self.worker is not None and not self.worker.is_done:
            self.worker.cancel()

    def discard(self) -> None:
        """Cancel the run and drop all it still sends: its rows were cleared away."""
        self.cancel()
        self.generation += 1

    def _current(self, generation: int) -> bool:
        return generation == self.generation

    def _on_worker_progressed(self, generation: int, event: object) -> None:
        if not self._current(generation):
            return
        if event.stage == "loading":
            self.progressed.emit(event.progress)
        else:
            self.batch_arrived.emit(event)

    def _on_worker_finished(self, generation: int, done: object) -> None:
        if self._current(generation):
            self.run_finished.emit(int(done or 0))

    def _on_worker_cancelled(self, generation: int) -> None:
        if self._current(generation):
            self.run_cancelled.emit()

    def _on_worker_errored(self, generation: int, exc: object) -> None:
        if self._current(generation):
            log.warning("classification failed: %s", exc)
            self.run_failed.emit(exc)
