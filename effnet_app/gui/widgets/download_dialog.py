"""Downloading a model's weights: a real progress bar, speed, time left and Cancel.

Failures close the dialog and come back to the caller as the engine's exception; the
main window shows its sentence in the message bar with "Use a mirror…" and "Import file…".
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from ...core.runtime import session
from ..workers import Worker


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class DownloadDialog(QDialog):
    """Runs ``session.download`` in a Worker; ``error`` holds the failure, if any."""

    def __init__(
        self, model_key: str, model_name: str, mirror: str | None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle(f"Downloading {model_name}")
        self.setMinimumWidth(460)
        self.model_key = model_key
        self.error: BaseException | None = None
        self.path = None
        self.cancelled = False
        self.heading = QLabel(
            f"<b>{model_name}</b> needs its pretrained weights. They are downloaded once "
            "and kept for next time."
        )
        self.heading.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the size is known
        self.detail = QLabel("Connecting…")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        layout.addWidget(buttons)
        self.worker = Worker(session.download, model_key, mirror, parent=self)
        self.worker.progressed.connect(self._on_worker_progressed)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.errored.connect(self._on_worker_errored)
        self.worker.cancelled.connect(self._on_worker_cancelled)

    def start(self) -> None:
        self.worker.start()

    def exec(self) -> int:  # noqa: A003 - Qt's name
        self.start()
        return super().exec()

    def reject(self) -> None:
        """Cancel: close at once; the download stops at its next chunk (or when a stalled
        connection times out) and the engine removes the partial file on its own thread."""
        if not self.worker.is_done:
            self.cancelled = True
            self.worker.cancel()
        super().reject()

    def _on_worker_progressed(self, progress) -> None:
        if progress.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * progress.done / progress.total))
            parts = [f"{_megabytes(progress.done)} of {_megabytes(progress.total)}"]
        else:
            parts = [progress.message or _megabytes(progress.done)]
        if progress.rate:
            parts.append(f"{_megabytes(progress.rate)}/s")
        if progress.eta is not None and progress.total:
            parts.append(f"{progress.eta:.0f} s left")
        self.detail.setText(" · ".join(parts))

    def _on_worker_finished(self, path) -> None:
        self.path = path
        self.accept()

    def _on_worker_errored(self, exc: BaseException) -> None:
        self.error = exc
        super().reject()

    def _on_worker_cancelled(self) -> None:
        self.cancelled = True
        super().reject()
