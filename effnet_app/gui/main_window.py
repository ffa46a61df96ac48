"""The main window: layout and wiring only. Never imports torch (the window shows first)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from .. import APP_DISPLAY_NAME, __version__
from ..core import about
from .settings import app_settings
from .widgets.drop_area import EmptyState
from .widgets.drop_overlay import DropOverlay, paths_from_mime

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


class MainWindow(QMainWindow):
    """Menus, status bar and a central area that invites a drop."""

    paths_received = Signal(list)  # list[str]: files and folders, from any way in

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_DISPLAY_NAME)
        self.setAcceptDrops(True)
        self.settings = app_settings()
        self.stack = QStackedWidget()
        self.empty_state = EmptyState()
        self.stack.addWidget(self.empty_state)
        self.setCentralWidget(self.stack)
        self.drop_overlay = DropOverlay(self)
        self.status_label = QLabel("Ready")
        self.statusBar().addWidget(self.status_label, 1)
        self._build_menus()
        self.empty_state.open_images_requested.connect(self.open_images)
        self.empty_state.open_folder_requested.connect(self.open_folder)
        self._restore_geometry()

    # ------------------------------------------------------------------ menus

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_images_action = self._action(
            file_menu, "&Open images…", QKeySequence.StandardKey.Open, self.open_images
        )
        self.open_folder_action = self._action(
            file_menu, "Open &folder…", QKeySequence("Ctrl+Shift+O"), self.open_folder
        )
        file_menu.addSeparator()
        self.quit_action = self._action(file_menu, "&Quit", QKeySequence("Ctrl+Q"), self.close)
        self.file_menu = file_menu
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = self._action(help_menu, "&About", QKeySequence("F1"), self.show_about)
        self.help_menu = help_menu

    def _action(self, menu, text: str, shortcut, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ getting images in

    def _last_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _remember_folder(self, folder: str | Path) -> None:
        self.settings.setValue("last_folder", str(folder))

    def open_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self._last_folder(), IMAGE_FILTER
        )
        if files:
            self._remember_folder(Path(files[0]).parent)
            self.receive_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self._last_folder())
        if folder:
            self._remember_folder(folder)
            self.receive_paths([folder])

    def receive_paths(self, paths: list[str]) -> None:
        """Every way in (drop, menus, paste, command line) ends here."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        self.status_label.setText(f"Received {len(paths)} item(s)")
        self.paths_received.emit(paths)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()
            self.drop_overlay.show_over(self)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self.drop_overlay.hide()

    def dropEvent(self, event) -> None:  # noqa: N802
        self.drop_overlay.hide()
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.receive_paths(paths)

    # ------------------------------------------------------------------ about

    def about_text(self) -> str:
        return (
            f"<h3>{APP_DISPLAY_NAME} {__version__}</h3>"
            "<p>Classifies images with EfficientNet (B0–B7, Lite) and learns your own classes.</p>"
            f"<pre>{about.report()}</pre>"
        )

    def show_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle(f"About {APP_DISPLAY_NAME}")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.exec()

    # ------------------------------------------------------------------ geometry

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 720)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()
        super().closeEvent(event)
