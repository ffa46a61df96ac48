"""Model › Export…: the chosen model as ONNX or OpenVINO files in a folder of the user's.

The dialog asks (format, folder) and shows (progress, then how well the export agrees
with PyTorch, or why it failed); the export is the ExportController's job. Cancel stops
it at its next step, and the core leaves no half-written folder behind.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import AppError, sentence_of
from ...core.export import sidecar
from ...core.fsutil import safe_folder_name
from ...core.models.bundle import KEY_PREFIX
from ...core.runtime import choices
from ..display import display_path
from .message_bar import MessageBar

log = logging.getLogger(__name__)

EXPORTS_FOLDER = "effnet-exports"  # in the home folder, unless the user picks another
FORMAT_TEXTS = {
    "onnx": "ONNX — model.onnx, for ONNX Runtime and most other runtimes",
    "openvino": "OpenVINO — model.xml and model.bin, for Intel's OpenVINO",
}
# The runtimes that can check an export of each format (the core checks with all there are).
FORMAT_RUNTIMES = {"onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",)}


def default_folder(key: str, fmt: str, home: Path | None = None) -> Path:
    """~/effnet-exports/<model>-<format>: "lite0-onnx", "pets-openvino"."""
    name = safe_folder_name(key.removeprefix(KEY_PREFIX))
    return (home or Path.home()) / EXPORTS_FOLDER / f"{name}-{fmt}"


def _missing_runtime(fmt: str) -> str:
    runtimes = FORMAT_RUNTIMES[fmt]
    names = " or ".join(choices.LABELS[r] for r in runtimes)
    none = "neither is" if len(runtimes) > 1 else "it is not"
    return (
        f"Needs {names} to check the export, and {none} installed here: pip install {runtimes[0]}"
    )


def written_files(info) -> list[str]:
    """The files a user's code reads, as the export wrote them."""
    model = (
        [sidecar.MODEL_XML, sidecar.MODEL_BIN] if info.format == "openvino" else [info.model_file]
    )
    return [*model, sidecar.LABELS, sidecar.PREPROCESSING, sidecar.README]


def agreement_lines(info) -> list[str]:
    return [agreement.describe() for agreement in getattr(info, "agreements", ())]


class ExportDialog(QDialog):
    """Format, folder, Export; then the agreement figures and Show folder."""

    def __init__(self, controller, key: str, name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Export {name}")
        self.setMinimumWidth(640)
        self.controller = controller
        self.key, self.name = key, name
        self.info = None  # the ExportInfo of the last export that finished
        self.error: BaseException | None = None
        self._folder_edited = False  # the user typed or chose a folder: keep it
        self.message_bar = MessageBar()
        heading = QLabel(
            f"<b>{html.escape(name)}</b> as a model file that runs outside this app, with "
            "its labels, its preprocessing and a README. The export is checked against "
            "PyTorch on reference photos before it is called done."
        )
        heading.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message_bar)
        layout.addWidget(heading)
        layout.addLayout(self._form())
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        layout.addWidget(self.result, 1)
        layout.addLayout(self._buttons())
        controller.export_started.connect(self._on_controller_export_started)
        controller.export_progressed.connect(self._on_controller_export_progressed)
        controller.export_finished.connect(self._on_controller_export_finished)
        controller.export_cancelled.connect(self._on_controller_export_cancelled)
        controller.export_failed.connect(self._on_controller_export_failed)
        controller.export_ended.connect(self._show_state)
        self._show_state()

    def _form(self) -> QFormLayout:
        installed = choices.installed_runtimes()
        self.format_group = QButtonGroup(self)
        self.format_buttons: dict[str, QRadioButton] = {}
        self.usable_formats = [
            f for f in FORMAT_TEXTS if any(r in installed for r in FORMAT_RUNTIMES[f])
        ]
        formats = QVBoxLayout()
        for fmt, text in FORMAT_TEXTS.items():
            button = QRadioButton(text)
            if fmt not in self.usable_formats:
                button.setEnabled(False)
                button.setToolTip(_missing_runtime(fmt))
            self.format_group.addButton(button)
            self.format_buttons[fmt] = button
            formats.addWidget(button)
        self.format_buttons[(self.usable_formats or ["onnx"])[0]].setChecked(True)
        self.format_group.buttonToggled.connect(self._on_format_group_button_toggled)
        self.folder_edit = QLineEdit(str(default_folder(self.key, self.format())))
        self.folder_edit.textEdited.connect(self._on_folder_edit_text_edited)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.choose_button)
        form = QFormLayout()
        form.addRow("Format:", formats)
        form.addRow("Folder:", row)
        return form

    def _buttons(self) -> QHBoxLayout:
        self.show_button = QPushButton("Show folder")
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the export; nothing is left behind")
        self.close_button = QPushButton("Close")
        for button, slot in (
            (self.show_button, self.show_folder),
            (self.export_button, self.start_export),
            (self.cancel_button, self.controller.cancel),
            (self.close_button, self.reject),
        ):
            button.clicked.connect(slot)
        row = QHBoxLayout()
        row.addWidget(self.show_button)
        row.addStretch()
        for button in (self.export_button, self.cancel_button, self.close_button):
            row.addWidget(button)
        return row

    # ------------------------------------------------------------------ asking

    def format(self) -> str:  # noqa: A003 - what the user chose
        return next(f for f, b in self.format_buttons.items() if b.isChecked())

    def set_format(self, fmt: str) -> None:
        self.format_buttons[fmt].setChecked(True)

    def folder(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def set_folder(self, folder: str | Path) -> None:
        self.folder_edit.setText(str(folder))
        self._folder_edited = True

    def _on_format_group_button_toggled(self, _button, checked: bool) -> None:
        if checked and not self._folder_edited:
            self.folder_edit.setText(str(default_folder(self.key, self.format())))

    def _on_folder_edit_text_edited(self, _text: str) -> None:
        self._folder_edited = True

    def choose_folder(self) -> None:
        start = self.folder().parent if self.folder().parent.is_dir() else Path.home()
        chosen = QFileDialog.getExistingDirectory(self, "Export into folder", str(start))
        if chosen:  # the export goes into a new folder named after the model there
            self.set_folder(Path(chosen) / self.folder().name)

    # ------------------------------------------------------------------ doing

    def start_export(self) -> bool:
        if not self.folder_edit.text().strip():
            self.message_bar.show_message("Choose a folder to export into.", "info")
            return False
        self.info = self.error = None
        self.message_bar.dismiss()
        return self.controller.start(self.key, self.format(), self.folder())

    def show_folder(self) -> None:
        if self.info is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.info.folder)))

    def reject(self) -> None:
        """Close (or Esc): a running export is cancelled; the core removes what it wrote."""
        if self.controller.running:
            self.controller.cancel()
        super().reject()

    def _show_state(self) -> None:
        running = self.controller.running
        for widget in (self.export_button, self.choose_button, self.folder_edit):
            widget.setEnabled(not running)
        for fmt, button in self.format_buttons.items():
            button.setEnabled(not running and fmt in self.usable_formats)
        self.export_button.setEnabled(not running and self.format() in self.usable_formats)
        self.cancel_button.setVisible(running)
        self.bar.setVisible(running)
        self.show_button.setVisible(self.info is not None and not running)

    def _on_controller_export_started(self, folder: Path) -> None:
        self.bar.setRange(0, 0)
        self.detail.setText(f"Exporting into {display_path(folder)}…")
        self.result.setText("")
        self._show_state()

    def _on_controller_export_progressed(self, progress) -> None:
        if progress.total:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.done)
        if progress.message:
            self.detail.setText(progress.message)

    def _on_controller_export_finished(self, info) -> None:
        self.info = info
        files = ", ".join(written_files(info))
        self.detail.setText(f"Exported {self.name} into {display_path(info.folder)}: {files}.")
        lines = [html.escape(line) for line in agreement_lines(info)]
        checked = "<br>".join(lines) if lines else "No runtime was there to check it."
        self.result.setText(f"<b>Checked against PyTorch:</b><br>{checked}")

    def _on_controller_export_cancelled(self) -> None:
        self.detail.setText("Export cancelled; nothing was kept.")

    def _on_controller_export_failed(self, exc: BaseException) -> None:
        self.error = exc
        if not isinstance(exc, AppError):  # the sentence sends the user to the log
            log.error("export of %s failed", self.key, exc_info=exc)
        self.detail.setText("")
        self.message_bar.show_message(sentence_of(exc), "error")
