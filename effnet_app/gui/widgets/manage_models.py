"""Model › Manage trained models…: the user's trained models, to rename, delete, find on
disk or bring in from a folder someone gave them.

The dialog asks (names, confirmations, folders) and shows; the changes themselves are
the TrainedModelsController's jobs, and the list is the window's catalog, refilled when
the window has reloaded it after a change.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import ModelError, sentence_of
from ...core.models import bundle
from ...core.runtime.catalog import classes_text, local_time
from ..display import display_path
from .message_bar import MessageBar

KEY_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Name", "Base model", "Classes", "Accuracy", "Created")
CLASSES_COLUMN = 2  # takes the room the others leave
EMPTY_TEXT = (
    "You have no trained models yet. Train one with Model › Train a new model…, "
    "or import a model folder someone gave you."
)


class ManageModelsDialog(QDialog):
    """A table of trained models with Rename…, Delete…, Show in file manager, Import."""

    train_requested = Signal()  # the user would rather train a new one
    use_requested = Signal(str)  # a double-clicked model's key: classify with it

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Trained models")
        self.controller = controller
        self.catalog = None
        self._select_next: str | None = None  # a renamed or imported model, once listed
        self.message_bar = MessageBar()
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setWordWrap(True)
        self.table = _table()
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(self._on_table_item_double_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(self._buttons())
        controller.change_started.connect(self._on_controller_change_started)
        controller.model_renamed.connect(self._on_controller_model_renamed)
        controller.model_deleted.connect(self._on_controller_model_deleted)
        controller.model_imported.connect(self._on_controller_model_imported)
        controller.change_failed.connect(self._on_controller_change_failed)
        self.resize(820, 380)
        self._update_buttons()

    def _buttons(self) -> QHBoxLayout:
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.show_button = QPushButton("Show in file manager")
        self.import_button = QPushButton("Import folder…")
        self.train_button = QPushButton("Train a new model…")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        for button, slot in (
            (self.rename_button, self.rename_selected),
            (self.delete_button, self.delete_selected),
            (self.show_button, self.show_selected),
            (self.import_button, self.import_folder),
            (self.train_button, self.train_requested),
        ):
            button.clicked.connect(slot)
        row = QHBoxLayout()
        for button in (self.rename_button, self.delete_button, self.show_button):
            row.addWidget(button)
        row.addStretch()
        row.addWidget(self.import_button)
        row.addWidget(self.train_button)
        row.addWidget(close)
        return row

    # ------------------------------------------------------------------ the list

    def set_catalog(self, catalog) -> None:
        """Refill the table from the window's newest catalog; the selection stays on the
        same model, or moves to the one just renamed or imported."""
        keep = self._select_next or self.selected_key()
        self._select_next = None
        self.catalog = catalog
        self.table.clear()
        for info in catalog.trained:
            self.table.addTopLevelItem(_row(info, catalog))
        trained = bool(catalog.trained)
        self.empty_label.setVisible(not trained)
        self.table.setVisible(trained)
        self.select(keep or "")
        self._update_buttons()

    def keys(self) -> list[str]:
        items = (self.table.topLevelItem(i) for i in range(self.table.topLevelItemCount()))
        return [item.data(0, KEY_ROLE) for item in items]

    def select(self, key: str) -> None:
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            if item.data(0, KEY_ROLE) == key:
                self.table.setCurrentItem(item)
                return
        if self.table.topLevelItemCount():
            self.table.setCurrentItem(self.table.topLevelItem(0))

    def selected_key(self) -> str | None:
        item = self.table.currentItem()
        return item.data(0, KEY_ROLE) if item is not None else None

    def selected(self):
        key = self.selected_key()
        return self.catalog.model(key) if key and self.catalog else None

    def _update_buttons(self) -> None:
        chosen = self.selected() is not None and not self.controller.running
        for button in (self.rename_button, self.delete_button, self.show_button):
            button.setEnabled(chosen)
        self.import_button.setEnabled(not self.controller.running)

    def _on_table_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        self.use_requested.emit(item.data(0, KEY_ROLE))

    # ------------------------------------------------------------------ the changes

    def rename_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        new = ask_new_name(self, info.name)
        if new is not None and new != info.name:
            self.controller.rename(info.key, new)

    def delete_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete trained model",
            f"Delete the trained model “{info.name}”?\n\nIts folder {display_path(info.path)} "
            "is removed from this computer. This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.delete(info.key)

    def show_selected(self) -> None:
        info = self.selected()
        if info is not None and info.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(info.path)))

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Import a trained model folder", str(Path.home())
        )
        if folder:
            self.controller.import_folder(folder)

    def _on_controller_change_started(self, sentence: str) -> None:
        self.message_bar.show_message(sentence, "info")
        self._update_buttons()

    def _on_controller_model_renamed(self, old: str, new: str) -> None:
        self._done(f"Renamed {_name(old)} to {_name(new)}.", new)

    def _on_controller_model_deleted(self, key: str) -> None:
        self._done(f"Deleted {_name(key)}.")

    def _on_controller_model_imported(self, key: str) -> None:
        self._done(f"Imported {_name(key)}; it is in the model list now.", key)

    def _done(self, sentence: str, select: str | None = None) -> None:
        self.message_bar.show_message(sentence, "info")
        self._select_next = select
        self._update_buttons()

    def _on_controller_change_failed(self, exc: BaseException) -> None:
        self.message_bar.show_message(sentence_of(exc), "error")
        self._update_buttons()


def ask_new_name(parent: QWidget, old: str) -> str | None:
    """A name the core accepts for a bundle, or None when the user gave up; a bad one is
    asked again with the core's sentence saying why."""
    prompt, text = f"New name for {old}:", old
    while True:
        new, ok = QInputDialog.getText(
            parent, "Rename trained model", prompt, QLineEdit.EchoMode.Normal, text
        )
        if not ok:
            return None
        try:
            return bundle.validate_name(new)
        except ModelError as exc:
            prompt, text = f"{exc.sentence}\n\nNew name for {old}:", new


def _name(key: str) -> str:
    return key.removeprefix(bundle.KEY_PREFIX)


def _table() -> QTreeWidget:
    table = QTreeWidget()
    table.setColumnCount(len(COLUMNS))
    table.setHeaderLabels(list(COLUMNS))
    table.setRootIsDecorated(False)
    table.setUniformRowHeights(True)
    table.setAlternatingRowColors(True)
    table.setStyleSheet("QTreeView::item { padding: 3px 10px 3px 2px; }")  # columns apart
    header = table.header()
    header.setStretchLastSection(False)
    for column in range(len(COLUMNS)):
        mode = QHeaderView.ResizeMode.Stretch if column == CLASSES_COLUMN else None
        header.setSectionResizeMode(column, mode or QHeaderView.ResizeMode.ResizeToContents)
    return table


def _row(info, catalog) -> QTreeWidgetItem:
    base = catalog.model(info.base) if info.base else None
    accuracy = f"{info.accuracy * 100:.1f} %" if info.accuracy is not None else "–"
    cells = (
        info.name,
        base.name if base is not None else (info.base or "–"),
        classes_text(info.classes) if info.classes else "–",
        accuracy,
        local_time(info.created, "%Y-%m-%d %H:%M") or "–",
    )
    item = QTreeWidgetItem(list(cells))
    item.setData(0, KEY_ROLE, info.key)
    item.setToolTip(0, info.about)
    item.setToolTip(CLASSES_COLUMN, ", ".join(info.classes))
    item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item
