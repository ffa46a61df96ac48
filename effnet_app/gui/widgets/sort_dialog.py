"""File › Sort into folders…: where to, copy or move, and an optional threshold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QWidget,
)


@dataclass(frozen=True)
class SortChoice:
    destination: Path
    move: bool
    min_confidence: float | None


class SortDialog(QDialog):
    """Where to, copy or move, and an optional confidence threshold."""

    def __init__(self, start_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        self.folder = QLineEdit(start_folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.copy_button = QRadioButton("Copy (originals stay where they are)")
        self.move_button = QRadioButton("Move")
        self.copy_button.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.copy_button)
        group.addButton(self.move_button)
        self.threshold_box = QCheckBox("Only images whose top-1 confidence is at least")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(1, 99)
        self.threshold.setSuffix(" %")
        self.threshold.setValue(50)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Destination:", row)
        form.addRow("", self.copy_button)
        form.addRow("", self.move_button)
        form.addRow(self.threshold_box, self.threshold)
        form.addRow(buttons)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sort into", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def min_confidence(self) -> float | None:
        return self.threshold.value() / 100 if self.threshold_box.isChecked() else None

    def choice(self) -> SortChoice | None:
        folder = self.folder.text().strip()
        if not folder:
            return None
        return SortChoice(Path(folder), self.move_button.isChecked(), self.min_confidence())


def ask_sort(parent: QWidget, start_folder: str, count: int) -> SortChoice | None:
    """The user's choice, moves confirmed; None when they cancelled."""
    dialog = SortDialog(start_folder, parent)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        choice = dialog.choice()
    finally:
        dialog.deleteLater()
    if choice is not None and choice.move:
        answer = QMessageBox.question(
            parent,
            "Move images?",
            f"Move up to {count} images out of their folders into label folders "
            f"under {choice.destination}? Nothing is overwritten.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return None
    return choice
