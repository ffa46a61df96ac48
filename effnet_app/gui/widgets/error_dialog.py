"""The dialog for unexpected errors: the sentence, copyable details and the log path."""

from __future__ import annotations

import traceback

from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ...core import about, paths
from ...core.errors import sentence_of


def details_text(exc: BaseException) -> str:
    """Traceback, versions, OS, GPU: what a bug report needs."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{tb}\n{about.report({'Qt': qVersion()})}"


class ErrorDialog(QMessageBox):
    """Shows one error. "Copy details" puts the report on the clipboard and keeps the dialog open."""

    def __init__(self, exc: BaseException, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Critical)
        self.setWindowTitle("Something went wrong")
        self.setText(sentence_of(exc))
        self.setInformativeText(
            f"The app is still running. Details were written to the log:\n{paths.log_file()}"
        )
        self.details = details_text(exc)
        self.setDetailedText(self.details)
        self.copy_button = self.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
        self.copy_button.clicked.disconnect()  # keep the dialog open after copying
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.addButton(QMessageBox.StandardButton.Close)

    def _on_copy_clicked(self) -> None:
        QApplication.clipboard().setText(self.details)
