"""File › Export results… and File › Sort into folders…"""

from __future__ import annotations

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

from ..core.errors import AppError
from ..core.runtime import results_io
from .models.results_model import ResultRole
from .workers import Worker


def run_info(w) -> results_io.RunInfo:
    return results_io.RunInfo(w.model_key, w._model_name(), w._device_name())


def export_results(w) -> None:
    results = w.results.all_results()
    if not results:
        w.message_bar.show_message("There are no results to export yet.", "info")
        return
    start = str(Path(w._last_folder()) / "effnet-results.csv")
    path, chosen = QFileDialog.getSaveFileName(
        w, "Export results", start, "CSV (*.csv);;JSON (*.json)"
    )
    if path:
        fmt = "json" if path.lower().endswith(".json") or chosen.startswith("JSON") else "csv"
        write_export(w, Path(path), fmt)


def write_export(w, path: Path, fmt: str) -> Path | None:
    if path.suffix.lower() != f".{fmt}":
        path = path.with_name(path.name + f".{fmt}")
    try:
        results_io.write_results(path, w.results.all_results(), fmt, w.top_k, run_info(w))
    except AppError as exc:
        w.show_problem(exc)
        return None
    w.status_label.setText(f"Exported {len(w.results.all_results())} rows to {path}")
    return path


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


def sort_into_folders(w) -> None:
    results = w.results.all_results()
    if not results:
        w.message_bar.show_message("There are no results to sort yet.", "info")
        return
    if w.controller.running or (w.sort_worker is not None and not w.sort_worker.is_done):
        # Sorting half a run would leave the rest behind, and moving files the classifier
        # is about to read turns them into "not found" rows.
        w.message_bar.show_message(
            "Wait until the running job has finished (or press Esc to cancel it), then sort.",
            "info",
        )
        return
    dialog = SortDialog(str(Path(w._last_folder()) / "sorted"), w)
    if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.folder.text().strip():
        return
    move = dialog.move_button.isChecked()
    if move:
        answer = QMessageBox.question(
            w,
            "Move images?",
            f"Move up to {len(results)} images out of their folders into label folders "
            f"under {dialog.folder.text()}? Nothing is overwritten.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
    start_sort(w, Path(dialog.folder.text().strip()), move, dialog.min_confidence())


def start_sort(w, destination: Path, move: bool, min_confidence: float | None) -> Worker:
    worker = Worker(
        results_io.sort_into_folders,
        w.results.all_results(),
        destination,
        move=move,
        min_confidence=min_confidence,
        parent=w,
    )
    w.run_status.set_running(True)
    worker.progressed.connect(w.run_status.show_progress)
    worker.finished.connect(lambda summary: _sort_done(w, summary))
    worker.cancelled.connect(
        lambda: _sort_done(w, None, getattr(worker.cancelled_with, "summary", None))
    )
    worker.errored.connect(lambda exc: (w.run_status.set_running(False), w.show_problem(exc)))
    w.sort_worker = worker
    worker.start()
    return worker


def _relocate(w, summary) -> None:
    """After a move, the table follows the files to their new folders."""
    if summary is not None and summary.move and summary.placed:
        w.results.model.relocate(summary.placed)
        w.preview.show_result(w.results.table.currentIndex().data(ResultRole))


def _sort_done(w, summary, partial=None) -> None:
    w.run_status.set_running(False)
    w.run_status.show_text("")
    _relocate(w, summary or partial)
    if summary is None:
        done = f" {partial.sentence()}" if partial is not None else ""
        w.message_bar.show_message(
            f"Sorting cancelled; what was sorted stays sorted.{done}", "info"
        )
        return
    level = "warning" if summary.errors else "info"
    w.message_bar.show_message(summary.sentence(), level)
    w.status_label.setText(summary.sentence())
