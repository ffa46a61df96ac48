"""File › Sort into folders: copies or moves classified images into label folders."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...core.runtime import results_io
from .single_job import SingleJob


class SortController(QObject):
    sort_started = Signal()
    sort_progressed = Signal(object)  # Progress
    sort_finished = Signal(object)  # SortSummary
    sort_cancelled = Signal(object)  # SortSummary of what was done before, or None
    sort_failed = Signal(object)  # the exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = SingleJob(self)

    @property
    def running(self) -> bool:
        return self._job.running

    def start(self, results, destination: Path, move: bool, min_confidence: float | None) -> bool:
        """False, and nothing started, while the last sort is still running."""
        worker = self._job.start(
            results_io.sort_into_folders,
            list(results),
            destination,
            move=move,
            min_confidence=min_confidence,
            on={
                "yielded": self.sort_progressed.emit,
                "returned": self.sort_finished.emit,
                "cancelled": self._on_worker_cancelled,
                "errored": self.sort_failed.emit,
            },
        )
        if worker is None:
            return False
        self.sort_started.emit()
        return True

    def cancel(self) -> None:
        self._job.cancel()

    def _on_worker_cancelled(self, exc: object) -> None:
        self.sort_cancelled.emit(getattr(exc, "summary", None))
