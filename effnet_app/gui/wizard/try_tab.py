"""Try it: drop, paste or open any photo and see the new model's top classes with confidence
bars (and "not sure" below its threshold) before saving it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ...core import paths as app_paths
from ...core.errors import sentence_of
from ..controllers.paste import PasteController
from ..widgets.drop_overlay import paths_from_mime

SHOWN = 6  # photos kept on the tab, newest first


class TryTab(QWidget):
    def __init__(self, state, controller, parent=None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.setAcceptDrops(True)
        hint = QLabel(
            "Drop photos here, paste one (Ctrl+V) or open them, to see what the new model "
            "says before you save it. Photos it is unsure about show “not sure”."
        )
        hint.setWordWrap(True)
        open_button = QPushButton("Open photos…")
        open_button.clicked.connect(self.open_photos)
        top = QHBoxLayout()
        top.addWidget(hint, 1)
        top.addWidget(open_button)
        self.rows = QWidget()
        self.grid = QGridLayout(self.rows)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows)
        self.status = QLabel("")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        self.shown: list = []  # ImageResult, newest first
        self.paster = PasteController(app_paths.data_dir() / "pasted", self)
        self.paster.paths_pasted.connect(self.try_paths)
        self.paster.paste_saved.connect(lambda path: self.try_paths([path]))
        self.paster.paste_failed.connect(lambda exc: self.status.setText(sentence_of(exc)))
        QShortcut(QKeySequence.StandardKey.Paste, self, self.paster.paste)
        controller.tried.connect(self._on_controller_tried)
        controller.try_failed.connect(self._on_controller_try_failed)

    def show_result(self, result) -> None:
        self.shown = []
        self._redraw()
        self.status.setText("")

    def open_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Photos to try", str(self.state.folder or Path.home()),
            "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp);;All files (*)",
        )  # fmt: skip
        if files:
            self.try_paths(files)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        found = paths_from_mime(event.mimeData())
        if found:
            event.acceptProposedAction()
            self.try_paths(found)

    def try_paths(self, found) -> None:
        if self.state.result is None:
            return
        files = _first_images(found, SHOWN)
        if not files:
            self.status.setText("No photos there to try.")
            return
        self.status.setText(f"Looking at {len(files)} photo(s)…")
        self._asked_for = self.state.result
        self.controller.try_images(self.state.result, files[:SHOWN], "cpu")

    def _on_controller_tried(self, batch) -> None:
        if not batch.results or self.state.result is not getattr(self, "_asked_for", None):
            return  # nothing, or a try-out of the model before the last retrain
        self.shown = (list(batch.results)[::-1] + self.shown)[:SHOWN]
        self.status.setText("")
        self._redraw()

    def _on_controller_try_failed(self, exc) -> None:
        self.status.setText(sentence_of(exc))

    def _redraw(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for row, result in enumerate(self.shown):
            name = QLabel(f"<b>{result.path.name}</b>")
            name.setToolTip(str(result.path))
            self.grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            self.grid.addWidget(self._bars(result), row, 1)
        self.grid.setColumnStretch(1, 1)

    def _bars(self, result) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 6)
        if result.problem:
            column.addWidget(QLabel(result.problem))
            return box
        if result.unsure:
            column.addWidget(QLabel("<i>not sure</i>: below the model's confidence threshold"))
        for prediction in result.predictions:
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(prediction.probability * 1000))
            bar.setFormat(f"{prediction.label}  {prediction.probability:.0%}")
            bar.setTextVisible(True)
            column.addWidget(bar)
        return box

    def result_texts(self) -> list[str]:
        """What the tab shows, one line per photo (for tests)."""
        lines = []
        for result in self.shown:
            top = result.top1
            label = "not sure" if result.unsure else (top.label if top else result.problem)
            lines.append(f"{result.path.name}: {label}")
        return lines


def _first_images(found, limit: int) -> list[Path]:
    """Files as given, and the first images directly inside a folder given: a quick look
    on the GUI thread, never a walk through a big tree."""
    files: list[Path] = []
    for item in map(Path, found):
        if item.is_dir():
            files += _images_in(item, limit - len(files))
        else:
            files.append(item)
        if len(files) >= limit:
            break
    return files[:limit]


def _images_in(folder: Path, limit: int) -> list[Path]:
    """The first ``limit`` images directly in ``folder``, stopping as soon as it has them."""
    import os

    from ...core.data.images import is_image_path

    found: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_image_path(entry.name) and entry.is_file():
                    found.append(Path(entry.path))
                    if len(found) >= limit:
                        break
    except OSError:
        return []
    return sorted(found)
