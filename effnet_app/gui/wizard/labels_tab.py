"""Likely mislabelled photos, and fixing them: "Move to class…" and "Exclude from training",
each confirmed, each in a list of changes that Undo takes back one by one; then Retrain.
The user's files change only when they confirm a move."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import AppError
from .image_grid import ImageGrid

EXPLAIN = (
    "The model judged each photo with a head that never saw that photo, and these are "
    "the ones whose label it found least likely. Look at each: if the label is wrong, "
    "move the photo to its class; if it does not belong in any class, exclude it. "
    "Then retrain."
)


def _ask(parent, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


class LabelsTab(QWidget):
    retrain_requested = Signal()

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.result = None
        explain = QLabel(EXPLAIN)
        explain.setWordWrap(True)
        self.grid = ImageGrid()
        self.grid.itemSelectionChanged.connect(self._update_buttons)
        self.move_button = QPushButton("Move to class…")
        self.move_button.clicked.connect(self.move_selected)
        self.exclude_button = QPushButton("Exclude from training")
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        self.retrain_button = QPushButton("Retrain with these changes")
        self.retrain_button.clicked.connect(self.retrain)
        self.changes = QListWidget()
        self.changes.setMaximumWidth(360)
        buttons = QHBoxLayout()
        for button in (self.move_button, self.exclude_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        side = QVBoxLayout()
        side.addWidget(QLabel("<b>Your changes</b>"))
        side.addWidget(self.changes, 1)
        side.addWidget(self.undo_button)
        side.addWidget(self.retrain_button)
        main = QVBoxLayout()
        main.addWidget(explain)
        self.empty = QLabel(
            "<i>No photo looks mislabelled: for every one, the model found its label likely.</i>"
        )
        main.addWidget(self.empty)
        main.addWidget(self.grid, 1)
        main.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addLayout(main, 3)
        layout.addLayout(side, 1)
        self._update_buttons()

    def show_result(self, result) -> None:
        self.result = result
        self._fill()

    def _fill(self) -> None:
        edits = self.state.edits
        touched = {e.path for e in edits.edits} if edits is not None else set()
        classes = self.result.classes if self.result is not None else ()
        items = []
        for issue in self.result.label_issues if self.result is not None else ():
            path = Path(issue["path"])
            if path in touched:
                continue
            given, guess = classes[issue["given"]], classes[issue["suggested"]]
            caption = f"{path.name}\n{given}, looks like {guess}"
            items.append((path, caption, f"{path}\nlabelled {given}; the model says {guess}"))
        self.grid.set_images(items)
        self.empty.setVisible(not items)
        self.grid.setVisible(bool(items))
        self.changes.clear()
        for edit in edits.edits if edits is not None else ():
            self.changes.addItem(edit.describe())
        self._update_buttons()

    def _update_buttons(self) -> None:
        edits = self.state.edits
        chosen = bool(self.grid.selected_paths())
        can_move = edits is not None and edits.can_move()
        self.move_button.setEnabled(chosen and can_move)
        self.move_button.setToolTip(
            "" if can_move else "The labels of a CSV dataset are in the CSV: edit it there."
        )
        self.exclude_button.setEnabled(chosen and edits is not None)
        has_edits = edits is not None and bool(edits.edits)
        self.undo_button.setEnabled(has_edits)
        self.retrain_button.setEnabled(has_edits)

    def retrain(self) -> None:
        """Retrain, unless the changes leave the photos unusable (then say why; Undo fixes)."""
        data = self.state.training_data()
        if not data.usable:
            QMessageBox.warning(
                self,
                "Cannot retrain yet",
                f"With your changes: {data.errors[0].sentence} Undo a change, then retrain.",
            )
            return
        self.retrain_requested.emit()

    def _issue(self, path: Path) -> dict | None:
        return next((i for i in self.result.label_issues if Path(i["path"]) == path), None)

    def move_selected(self) -> None:
        paths = self.grid.selected_paths()
        if not paths or self.result is None:
            return
        issue = self._issue(paths[0])
        classes = list(self.result.classes)
        first = classes.index(classes[issue["suggested"]]) if issue else 0
        name, ok = QInputDialog.getItem(
            self, "Move to class", f"Move {len(paths)} photo(s) to:", classes, first, False
        )
        if not ok:
            return
        names = ", ".join(p.name for p in paths[:3]) + ("…" if len(paths) > 3 else "")
        text = (
            f"Move {names} into the folder of “{name}”? The file is moved on disk; "
            "Undo moves it back."
        )
        if _ask(self, "Move photos", text):
            self._apply(
                lambda p: self.state.edits.move_to_class(p, name),
                paths,
            )

    def exclude_selected(self) -> None:
        paths = self.grid.selected_paths()
        text = f"Leave {len(paths)} photo(s) out when you retrain? The files stay where they are."
        if paths and _ask(self, "Exclude photos", text):
            self._apply(self.state.edits.exclude, paths)

    def _apply(self, change, paths) -> None:
        for path in paths:
            try:
                change(path)
            except AppError as exc:
                QMessageBox.warning(self, "Could not change it", exc.sentence)
                break
        self._fill()

    def undo(self) -> None:
        edits = self.state.edits
        try:
            if edits is not None:
                edits.undo()
        except AppError as exc:
            QMessageBox.warning(self, "Could not undo", exc.sentence)
            return
        self._fill()
