"""Dialogs for getting weights: the download's progress (speed, time left, Cancel), the
mirror address, and the file to import.

The download itself is the WeightsController's job; the dialog shows its progress and
closes on its outcome. Failures come back to the caller in ``error``; the main window
shows their sentence in the message bar with "Use a mirror…" and "Import file…".
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

WEIGHTS_FILTER = "PyTorch weights (*.pth *.pt);;All files (*)"


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def progress_text(progress) -> str:
    if progress.total:
        parts = [f"{_megabytes(progress.done)} of {_megabytes(progress.total)}"]
    else:
        parts = [progress.message or _megabytes(progress.done)]
    if progress.rate:
        parts.append(f"{_megabytes(progress.rate)}/s")
    if progress.eta is not None and progress.total:
        parts.append(f"{progress.eta:.0f} s left")
    return " · ".join(parts)


class DownloadDialog(QDialog):
    """Downloads ``model_key`` with ``controller`` (a WeightsController) while it is open.

    After ``exec()``: ``path`` is set on success, ``error`` on failure, ``cancelled`` when
    the user (or the job) cancelled.
    """

    def __init__(
        self,
        controller,
        model_key: str,
        model_name: str,
        mirror: str | None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle(f"Downloading {model_name}")
        self.setMinimumWidth(460)
        self.controller = controller
        self.model_key = model_key
        self.mirror = mirror
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
        controller.download_progressed.connect(self._on_controller_download_progressed)
        controller.download_finished.connect(self._on_controller_download_finished)
        controller.download_failed.connect(self._on_controller_download_failed)
        controller.download_cancelled.connect(self._on_controller_download_cancelled)

    def exec(self) -> int:  # noqa: A003 - Qt's name
        self.controller.download(self.model_key, self.mirror)
        return super().exec()

    def reject(self) -> None:
        """Cancel: close at once; the controller stops the download on its own."""
        if self.isVisible() and not self.cancelled and self.path is None and self.error is None:
            self.cancelled = True
            self.controller.cancel_download()
        super().reject()

    def _on_controller_download_progressed(self, progress) -> None:
        if progress.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * progress.done / progress.total))
        self.detail.setText(progress_text(progress))

    def _on_controller_download_finished(self, key: str, path) -> None:
        if key == self.model_key and self.isVisible():
            self.path = path
            self.accept()

    def _on_controller_download_failed(self, key: str, exc: BaseException) -> None:
        if key == self.model_key and self.isVisible():
            self.error = exc
            super().reject()

    def _on_controller_download_cancelled(self, key: str) -> None:
        if key == self.model_key and self.isVisible():
            self.cancelled = True
            super().reject()


def ask_mirror(parent: QWidget, current: str) -> str | None:
    """The mirror's base URL the user typed ("" for none), or None when cancelled."""
    text, ok = QInputDialog.getText(
        parent,
        "Download mirror",
        "Base URL of a server that holds torchvision's weight files under their usual names\n"
        "(leave empty to download from the original address):",
        text=current,
    )
    return text.strip() if ok else None


def ask_weights_file(parent: QWidget, folder: str) -> str | None:
    file, _ = QFileDialog.getOpenFileName(parent, "Import weights file", folder, WEIGHTS_FILTER)
    return file or None
