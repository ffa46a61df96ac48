"""Model › Export…: writes the chosen model for ONNX Runtime or OpenVINO into a folder.

The export itself (the model file, labels, preprocessing, README, checked against
PyTorch on reference photos) is the core's ``export_for_user`` job; it runs in a Worker
with its progress passed on, one at a time. Finding the model's spec and weights
imports torch, so that is done in the job too, never on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...core.errors import WeightsError
from ...core.jobs import NEVER, CancelToken, Progress
from .single_job import SingleJob

FORMATS = ("onnx", "openvino")


class ExportController(QObject):
    export_started = Signal(object)  # Path of the folder being written
    export_progressed = Signal(object)  # Progress
    export_finished = Signal(object)  # ExportInfo: where it is and how well it agrees
    export_cancelled = Signal()  # nothing was left behind
    export_failed = Signal(object)  # the exception
    export_ended = Signal()  # after any of the three: ``running`` is False from here on

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = SingleJob(self)

    @property
    def running(self) -> bool:
        return self._job.running

    def start(self, key: str, fmt: str, folder: str | Path) -> bool:
        """Export model ``key`` as ``fmt`` into ``folder``; False while one is running."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt}")
        folder = Path(folder).expanduser()
        worker = self._job.start(
            export_model_job,
            key,
            fmt,
            folder,
            on={
                "yielded": self.export_progressed.emit,
                "returned": self.export_finished.emit,
                "cancelled": self._on_worker_cancelled,
                "errored": self.export_failed.emit,
                "ended": self.export_ended.emit,
            },
        )
        if worker is None:
            return False
        self.export_started.emit(folder)
        return True

    def cancel(self) -> None:
        self._job.cancel()

    def _on_worker_cancelled(self, _exc: object) -> None:
        self.export_cancelled.emit()


def export_model_job(key: str, fmt: str, folder: Path, cancel: CancelToken = NEVER):
    """Job: model ``key`` exported as ``fmt`` into ``folder``; returns the ExportInfo."""
    yield Progress(0, 1, "Loading the model…", "steps")
    from ...core.export.package import export_for_user
    from ...core.models import registry

    spec = registry.resolve(key)
    weights = registry.weights_path(spec)
    if weights is None:
        raise WeightsError(
            f"The weights for {spec.name} are not on this computer yet. Choose it in the "
            "model list to download them, then export it."
        )
    cancel.raise_if_cancelled()
    return (yield from export_for_user(spec, weights, fmt, folder, cancel))
