"""Page 1: the labelled folder, scanned in a worker, its classes and what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWizardPage,
)

from ...core.errors import sentence_of
from ..widgets.drop_overlay import paths_from_mime
from .class_table import ClassTable
from .layout_picture import LayoutPicture

DEFAULT_MIN_SIDE = 224  # Lite0's input; the scan only uses it to call images "small"

INTRO = (
    "Choose a folder that holds one sub-folder of photos per class, such as "
    "<i>photos/cat</i> and <i>photos/dog</i>: the sub-folders' names become the classes. "
    "A folder with <i>train/</i> and <i>val/</i> inside, or a CSV file of "
    "<i>path,label</i> rows (drop it here), works too. Drop the folder here or choose "
    "it. Nothing in it is "
    "changed unless you ask."
)


def grouped_checks(checks, most: int = 2) -> list[tuple[str, str]]:
    """(level, sentence) per check; a finding made for many classes is said once, for the
    first ``most`` of them, with how many more there are."""
    by_code: dict[str, list] = {}
    for check in checks:
        by_code.setdefault(check.code, []).append(check)
    lines = []
    for found in by_code.values():
        lines += [(c.level, c.sentence) for c in found[:most]]
        rest = len(found) - most
        if rest > 0:
            more = f"The same is true of {rest} more class{'es' if rest > 1 else ''}."
            lines.append((found[0].level, more))
    return lines


class DataPage(QWizardPage):
    def __init__(self, state, controller, settings, parent=None) -> None:
        super().__init__(parent)
        controller.jobs_changed.connect(self.completeChanged)
        self.state, self.controller, self.settings = state, controller, settings
        self.setTitle("Your photos")
        self.setSubTitle("Step 1 of 5: the classes to learn, one folder each.")
        self.setAcceptDrops(True)
        self._build()
        controller.scan_progressed.connect(self._on_controller_scan_progressed)
        controller.scan_finished.connect(self._on_controller_scan_finished)
        controller.scan_failed.connect(self._on_controller_scan_failed)
        last = str(settings.value("wizard/folder", "") or "")
        if last and Path(last).exists():
            self.path_edit.setText(last)

    def _build(self) -> None:
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(intro, 1)
        top.addWidget(LayoutPicture())
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("No folder chosen yet")
        self.path_edit.setReadOnly(True)
        choose = QPushButton("Choose folder…")
        choose.clicked.connect(self.choose_folder)
        self.show_button = QPushButton("Show in file manager")
        self.show_button.clicked.connect(self.show_in_file_manager)
        self.show_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(choose)
        row.addWidget(self.show_button)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = ClassTable()
        self.checks = QListWidget()
        self.checks.setWordWrap(True)
        self.checks.setMaximumHeight(120)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.checks)

    # ------------------------------------------------------------------ choosing
    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        if self.state.dataset is None and self.path_edit.text():
            self.scan(Path(self.path_edit.text()))

    def choose_folder(self) -> None:
        start = self.path_edit.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the folder of classes", start)
        if folder:
            self.scan(Path(folder))

    def show_in_file_manager(self) -> None:
        if self.state.folder is not None:
            target = self.state.folder
            QDesktopServices.openUrl(
                QUrl.fromLocalFile(str(target if target.is_dir() else target.parent))
            )

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        local = paths_from_mime(event.mimeData())
        if local:
            self.scan(Path(local[0]))
            event.acceptProposedAction()

    def scan(self, folder: Path) -> None:
        """Scan ``folder`` in a worker; the table fills in when it is done."""
        self.state.folder, self.state.dataset, self.state.edits = folder, None, None
        self.path_edit.setText(str(folder))
        self.show_button.setEnabled(True)
        self.settings.setValue("wizard/folder", str(folder))
        self.table.setRowCount(0)
        self.checks.clear()
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText(f"Looking through {folder.name}…")
        self.controller.scan(folder, self.min_side())
        self.completeChanged.emit()

    def min_side(self) -> int:
        spec_side = self.settings.value("wizard/resolution", DEFAULT_MIN_SIDE)
        try:
            return int(spec_side)
        except (TypeError, ValueError):
            return DEFAULT_MIN_SIDE

    # ------------------------------------------------------------------ results
    def _on_controller_scan_progressed(self, progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
        self.status.setText(progress.message or "Checking images…")

    def _on_controller_scan_finished(self, dataset) -> None:
        if self.state.folder is None or Path(dataset.source) != Path(
            os.path.abspath(self.state.folder)
        ):
            return  # an older folder's scan
        self.progress.setVisible(False)
        self.show_dataset(dataset)

    def show_dataset(self, dataset) -> None:
        from ...core.data.edits import DataEdits

        self.state.dataset = dataset
        if self.state.edits is None:
            self.state.edits = DataEdits(dataset)
        self.table.set_dataset(dataset)
        self.checks.clear()
        for level, sentence in grouped_checks(dataset.checks):
            self._add_check(level, sentence)
        if not dataset.checks:
            self._add_check("info", "Every image could be read, and nothing looks wrong.")
        images = len(dataset.samples)
        if dataset.usable:
            self.status.setText(
                f"{len(dataset.classes)} classes, {images} images. "
                + ("Look at the notes below, then press Next." if dataset.checks else "Press Next.")
            )
        else:
            self.status.setText(
                "This folder cannot be used for training yet: fix what is marked as an error "
                "below (in your file manager), then choose the folder again."
            )
        self.completeChanged.emit()

    def _add_check(self, level: str, sentence: str) -> None:
        icon = {
            "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
            "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
        }.get(level, QStyle.StandardPixmap.SP_MessageBoxInformation)
        item = QListWidgetItem(self.style().standardIcon(icon), sentence)
        item.setData(Qt.ItemDataRole.UserRole, level)
        self.checks.addItem(item)

    def _on_controller_scan_failed(self, exc) -> None:
        self.progress.setVisible(False)
        self.state.dataset = None
        self.checks.clear()
        self._add_check("error", sentence_of(exc))
        self.status.setText("This folder cannot be used for training.")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        data = self.state.dataset
        return data is not None and data.usable and not self.controller.scanning

    def check_texts(self) -> list[tuple[str, str]]:
        """(level, sentence) of every line in the checks list, for tests and screenshots."""
        return [
            (self.checks.item(i).data(Qt.ItemDataRole.UserRole), self.checks.item(i).text())
            for i in range(self.checks.count())
        ]
