"""The main window: layout and wiring only. Never imports torch (the window shows first).

Model work happens in Workers started by the controllers and panels; this module connects
their signals to the views and keeps the user's choices in the settings.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .. import APP_DISPLAY_NAME, __version__
from ..core import about
from ..core.devices import resolve_device
from ..core.errors import AppError, DeviceError, WeightsError
from ..core.models import zoo
from ..core.runtime.catalog import load_catalog
from ..core.runtime.session import Session
from . import menus
from .controllers.classify import ClassifyController
from .settings import app_settings
from .theme import apply_theme
from .widgets.about_model import AboutModelPanel
from .widgets.drop_area import EmptyState
from .widgets.drop_overlay import DropOverlay, paths_from_mime
from .widgets.message_bar import MessageBar
from .widgets.pickers import DevicePicker, ModelPicker
from .widgets.preview import PreviewPanel
from .widgets.results_panel import ResultsPanel
from .widgets.run_status import RunStatus
from .workers import Worker

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


def _top_k_setting(value) -> int:
    """A hand-edited or damaged ini must not stop the window from opening."""
    try:
        return max(int(str(value).strip()), 1)
    except ValueError:
        return 5


def _device_setting(value) -> str:
    """Keys the picker can show; anything else ("gpu7") falls back to Auto, as models do."""
    key = str(value).strip().lower()
    if key in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", key):
        return key
    return "auto"


class MainWindow(QMainWindow):
    paths_received = Signal(list)  # list[str]: files and folders, from any way in
    catalog_loaded = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_DISPLAY_NAME)
        self.setAcceptDrops(True)
        self.settings = app_settings()
        self.session = Session()
        self.catalog = None
        self.model_key = str(self.settings.value("model", zoo.DEFAULT_MODEL))
        self.device = _device_setting(self.settings.value("device", "auto"))
        self.top_k = _top_k_setting(self.settings.value("top_k", 5))
        self.controller = ClassifyController(self.session, self)
        self.sort_worker: Worker | None = None  # File › Sort into folders…, while it runs
        self._build_widgets()
        menus.build_menus(self)
        self._connect()
        self._restore_layout()
        apply_theme(str(self.settings.value("theme", "system")))
        self._catalog_worker = Worker(load_catalog, parent=self)
        self._catalog_worker.finished.connect(self._on_catalog_worker_finished)
        self._catalog_worker.errored.connect(self._on_catalog_worker_errored)
        QTimer.singleShot(0, self._catalog_worker.start)  # after the window is on screen

    # ------------------------------------------------------------------ layout

    def _build_widgets(self) -> None:
        self.model_picker = ModelPicker()
        self.device_picker = DevicePicker()
        self.device_picker.select(self.device)
        toolbar = QToolBar("Model")
        toolbar.setObjectName("modelToolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(QLabel(" Model: "))
        toolbar.addWidget(self.model_picker)
        toolbar.addWidget(QLabel("  Device: "))
        toolbar.addWidget(self.device_picker)
        self.addToolBar(toolbar)
        self.message_bar = MessageBar()
        self.empty_state = EmptyState()
        self.results = ResultsPanel()
        self.preview = PreviewPanel(self.session, lambda: (self.model_key, self.device))
        self.about_model = AboutModelPanel()
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.results.summary_view, "Summary")
        self.side_tabs.addTab(self.about_model, "About this model")
        self.side_split = QSplitter(Qt.Orientation.Vertical)
        self.side_split.addWidget(self.preview)
        self.side_split.addWidget(self.side_tabs)
        self.side_split.setStretchFactor(0, 3)
        self.side_split.setStretchFactor(1, 2)
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(self.results)
        self.main_split.addWidget(self.side_split)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 2)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(self.main_split)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.drop_overlay = DropOverlay(self)
        self.status_label = QLabel("Ready")
        self.run_status = RunStatus()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.run_status)

    def _connect(self) -> None:
        self.empty_state.open_images_requested.connect(self.open_images)
        self.empty_state.open_folder_requested.connect(self.open_folder)
        self.model_picker.model_chosen.connect(self._on_model_picker_model_chosen)
        self.device_picker.device_chosen.connect(self.choose_device)
        self.run_status.cancel_requested.connect(self.cancel_run)
        self.results.result_selected.connect(self.preview.show_result)
        c = self.controller
        c.run_started.connect(self._on_controller_run_started)
        c.batch_arrived.connect(self._on_controller_batch_arrived)
        c.progressed.connect(self._on_controller_progressed)
        c.run_finished.connect(self._on_controller_run_finished)
        c.run_cancelled.connect(self._on_controller_run_cancelled)
        c.run_failed.connect(self._on_controller_run_failed)

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
        """Every way in (drop, menus, paste, command line) ends here: a new run."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        self.paths_received.emit(paths)
        self.classify(paths)

    def classify(self, paths: list[str]) -> None:
        self.message_bar.dismiss()
        self.results.clear()
        self.preview.show_result(None)
        self.stack.setCurrentWidget(self.main_split)
        self.controller.start(paths, self.model_key, self.device, self.top_k)

    def classify_again(self) -> None:
        if self.controller.last_paths:
            self.classify(self.controller.last_paths)

    def cancel_run(self) -> None:
        """Esc and the status bar's Cancel: stop the job the status bar shows."""
        self.controller.cancel()
        if self.sort_worker is not None:
            self.sort_worker.cancel()

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

    # ------------------------------------------------------------------ runs

    def _on_controller_run_started(self, generation: int) -> None:
        self.run_status.set_running(True)
        self.run_status.show_text("Starting…")
        self.status_label.setText(f"Classifying with {self._model_name()} on {self.device}")

    def _on_controller_batch_arrived(self, batch) -> None:
        self.results.append(batch.results)
        self.run_status.show_progress(batch.progress)

    def _on_controller_progressed(self, progress) -> None:
        self.run_status.show_text(progress.message)

    def _on_controller_run_finished(self, done: int) -> None:
        self.run_status.set_running(False)
        problems = self.results.problem_count()
        self.run_status.show_text("")
        self.status_label.setText(
            f"{done - problems} classified, {problems} with problems "
            f"({self._model_name()} on {self._device_name()})"
        )
        if done == 0:
            self.message_bar.show_message("No images were found there.", "info")

    def _on_controller_run_cancelled(self) -> None:
        self.run_status.set_running(False)
        self.run_status.show_text("")
        self.status_label.setText(f"Cancelled: {self.results.count()} images were classified")

    def _on_controller_run_failed(self, exc: BaseException) -> None:
        self.run_status.set_running(False)
        self.run_status.show_text("")
        self.status_label.setText("Stopped by a problem")
        self.show_problem(exc)

    def show_problem(self, exc: BaseException, model_key: str | None = None) -> None:
        """Expected problems go to the message bar; the unexpected to the error dialog."""
        import sys

        if not isinstance(exc, AppError):
            sys.excepthook(type(exc), exc, exc.__traceback__)
            return
        actions = []
        if isinstance(exc, DeviceError):
            actions.append(("Use CPU", lambda: self.choose_device("cpu", rerun=True)))
        if isinstance(exc, WeightsError):
            actions += menus.weights_actions(self, model_key or self.model_key)
        self.message_bar.show_message(exc.sentence, "error", actions)

    # ------------------------------------------------------------------ models and devices

    def _model_name(self) -> str:
        info = self.catalog.model(self.model_key) if self.catalog else None
        return info.name if info else self.model_key

    def _device_name(self) -> str:
        try:  # torch is loaded once a run has finished, so this is cheap here
            return resolve_device(self.device)
        except AppError:
            return self.device

    def _on_catalog_worker_finished(self, catalog) -> None:
        self.catalog = catalog
        if catalog.model(self.model_key) is None:
            self.model_key = zoo.DEFAULT_MODEL
        self.model_picker.set_catalog(catalog, self.model_key)
        if self.device == "cuda" and any(d.key == "cuda:0" for d in catalog.devices):
            self.device = "cuda:0"  # plain "cuda" means the first GPU, as the CLI reads it
        self.device_picker.set_devices(catalog.devices, self.device)
        self.about_model.show_model(catalog, self.model_key)
        choice = next((d for d in catalog.devices if d.key == self.device), None)
        if self.device.startswith("cuda") and (choice is None or not choice.available):
            reason = choice.reason if choice else "That CUDA device does not exist here."
            self.message_bar.show_message(
                f"Your settings choose {self.device}, which is not available: {reason}",
                "warning",
                [("Use CPU", lambda: self.choose_device("cpu"))],
            )
        self.catalog_loaded.emit(catalog)

    def _on_catalog_worker_errored(self, exc: BaseException) -> None:
        self.show_problem(exc)

    def mark_available(self, key: str) -> None:
        if self.catalog is None:
            return
        models = tuple(
            dataclasses.replace(m, available=True) if m.key == key else m
            for m in self.catalog.models
        )
        self.catalog = dataclasses.replace(self.catalog, models=models)
        self.model_picker.set_catalog(self.catalog, self.model_key)

    def _on_model_picker_model_chosen(self, key: str) -> None:
        info = self.catalog.model(key) if self.catalog else None
        if key == self.model_key and info is not None and info.available:
            return  # the picker re-picked the model in use: keep its results, no re-run
        self.choose_model(key)

    def choose_model(self, key: str) -> bool:
        """Switch model; download its weights first when needed. False when it could not."""
        info = self.catalog.model(key) if self.catalog else None
        if info is not None and not info.available and not menus.download_weights(self, key):
            self.model_picker.select(self.model_key)
            return False
        self.model_key = key
        self.settings.setValue("model", key)
        self.model_picker.select(key)
        self.about_model.show_model(self.catalog, key)
        if self.controller.last_paths:
            self.classify_again()
        return True

    def choose_device(self, key: str, rerun: bool = False) -> None:
        self.device = key
        self.settings.setValue("device", key)
        self.device_picker.select(key)
        self.message_bar.dismiss()
        if rerun:
            self.classify_again()

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

    # ------------------------------------------------------------------ layout memory

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1200, 760)
        for key, widget in (
            ("window/state", self),
            ("window/main_split", self.main_split),
            ("window/side_split", self.side_split),
        ):
            state = self.settings.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                widget.restoreState(state)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.controller.cancel()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/main_split", self.main_split.saveState())
        self.settings.setValue("window/side_split", self.side_split.saveState())
        self.settings.sync()
        super().closeEvent(event)
