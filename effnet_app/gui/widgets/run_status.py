"""Progress of the running job in the status bar: count, images per second, ETA, Cancel."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    return f"{seconds // 60} min {seconds % 60:02d} s left"


class RunStatus(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(False)
        self.label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop classifying (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.set_running(False)

    def set_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        if running:
            self.bar.setRange(0, 0)

    def show_progress(self, progress) -> None:
        if progress.total:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.done)
            parts = [f"{progress.done} of {progress.total} images"]
            if progress.rate:
                parts.append(f"{progress.rate:.1f} images/s")
            eta = format_eta(progress.eta) if progress.done < progress.total else ""
            if eta:
                parts.append(eta)
            text = " · ".join(parts)
            if progress.message and not progress.message.startswith("Classified"):
                text = f"{progress.message} — {text}"
        else:
            text = progress.message
        self.label.setText(text)

    def show_text(self, text: str) -> None:
        self.label.setText(text)
