"""The main window: layout and wiring only. Never imports torch (the window shows first).

Each job has its controller (classify, sort, paste, weights, catalog) that owns its
Worker; this module builds the widgets, connects the menus' actions and the controllers'
signals to the views, and keeps the user's choices in the settings. Choosing models and
devices lives in ``model_choice.py``, the engine and exporting the model in
``engine_choice.py``, the output side (export, sort, clear) in
``output_actions.py``, training and managing the user's own models in
``trained_models.py``; all are parts of this one window.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
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
from ..core import about, paths
from ..core.errors import AppError, DeviceError, WeightsError
from ..core.models import zoo
from ..core.runtime.session import Session
from . import menus
from .controllers.catalog import CatalogController
from .controllers.classify import ClassifyController, ClassifyRequest
from .controllers.paste import PasteController
from .controllers.sort import SortController
from .controllers.weights import WeightsController
from .engine_choice import EngineChoice
from .model_choice import ModelChoice, device_setting
from .output_actions import OutputActions
from .settings import app_settings
from .theme import THEMES, apply_theme
from .trained_models import TrainedModels
from .widgets.about_model import AboutModelPanel
from .widgets.drop_area import EmptyState
from .widgets.drop_overlay import DropOverlay, paths_from_mime
from .widgets.message_bar import MessageBar
from .widgets.pickers import DevicePicker, ModelPicker
from .widgets.preview import PreviewPanel
from .widgets.results_panel import ResultsPanel
from .widgets.run_status import RunStatus

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


def _top_k_setting(value) -> int:
    """A hand-edited or damaged ini must not stop the window from opening."""
    try:
        return max(int(str(value).strip()), 1)
    except ValueError:
        return 5


class MainWindow(ModelChoice, EngineChoice, OutputActions, TrainedModels, QMainWindow):
    paths_received = Signal(object)  # list[str]: files and folders, from any way in
    catalog_loaded = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_DISPLAY_NAME)
        self.setAcceptDrops(True)
        self.settings = app_settings()
        self.session = Session()
        self.catalog = None
        self.model_key = str(self.settings.value("model", zoo.DEFAULT_MODEL))
        self.device = device_setting(self.settings.value("device", "auto"))
        self.top_k = _top_k_setting(self.settings.value("top_k", 5))
        self.controller = ClassifyController(self.session, self)
        self.sorter = SortController(self)
        self.paster = PasteController(paths.data_dir() / "pasted", self)
        self.weights = WeightsController(self)
        self.catalog_controller = CatalogController(self)
        self._init_trained_models()
        self._build_widgets()
        theme = str(self.settings.value("theme", "system"))
        self.menu_actions = menus.MenuActions(self, THEMES, theme)
        menus.build_menus(self.menuBar(), self.menu_actions)
        self._init_engine()
        self._connect_views()
        self._connect_actions()
        self._connect_controllers()
        self._restore_layout()
        apply_theme(theme)
        QTimer.singleShot(0, self.reload_catalog)  # after the window is on screen

    # ------------------------------------------------------------------ layout

    def _build_widgets(self) -> None:
        self.model_picker = ModelPicker()
        self.device_picker = DevicePicker()
        self.device_picker.select(self.device)
        toolbar = QToolBar("Model")
        toolbar.setObjectName("modelToolbar")
        toolbar.setMovable(False)
        for widget in (QLabel(" Model: "), self.model_picker):
            toolbar.addWidget(widget)
        for widget in (QLabel("  Device: "), self.device_picker):
            toolbar.addWidget(widget)
        self.addToolBar(toolbar)
        self.message_bar = MessageBar()
        self.empty_state = EmptyState()
        self.results = ResultsPanel()
        self.preview = PreviewPanel(self.session, lambda: (self.model_key, self.device))
        self.about_model = AboutModelPanel()
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.results.summary_view, "Summary")
        self.side_tabs.addTab(self.about_model, "About this model")
        self.side_split = _splitter(Qt.Orientation.Vertical, self.preview, self.side_tabs)
        self.main_split = _splitter(Qt.Orientation.Horizontal, self.results, self.side_split)
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

    def _connect_views(self) -> None:
        self.empty_state.open_images_requested.connect(self.open_images)
        self.empty_state.open_folder_requested.connect(self.open_folder)
        self.empty_state.train_requested.connect(self.open_training_wizard)
        self.model_picker.model_chosen.connect(self._on_model_picker_model_chosen)
        self.device_picker.device_chosen.connect(self.choose_device)
        self.run_status.cancel_requested.connect(self.cancel_run)
        self.results.result_selected.connect(self.preview.show_result)

    def _connect_actions(self) -> None:
        a = self.menu_actions
        for action, slot in (
            (a.open_images, self.open_images),
            (a.open_folder, self.open_folder),
            (a.paste, self.paster.paste),
            (a.export, self.export_results),
            (a.sort, self.sort_into_folders),
            (a.quit, self.close),
            (a.cancel, self.cancel_run),
            (a.again, self.classify_again),
            (a.clear, self.clear_results),
            (a.train_model, self.open_training_wizard),
            (a.manage_models, self.manage_models),
            (a.about_model, lambda: self.side_tabs.setCurrentWidget(self.about_model)),
            (a.import_weights, lambda: self.import_weights(self.model_key)),
            (a.mirror, self.set_mirror),
            (a.about, self.show_about),
            (a.log, self.show_log_folder),
        ):
            action.triggered.connect(slot)
        a.theme_group.triggered.connect(lambda action: self.set_theme(action.data()))

    def _connect_controllers(self) -> None:
        c = self.controller
        c.run_started.connect(self._on_controller_run_started)
        c.batch_arrived.connect(self._on_controller_batch_arrived)
        c.progressed.connect(self._on_controller_progressed)
        c.run_finished.connect(self._on_controller_run_finished)
        c.run_cancelled.connect(self._on_controller_run_cancelled)
        c.run_failed.connect(self._on_controller_run_failed)
        self._connect_output_controllers()
        self._connect_model_controllers()
        p = self.paster
        p.paths_pasted.connect(self.receive_paths)
        p.paste_saved.connect(self._on_paster_paste_saved)
        p.paste_failed.connect(self.show_problem)
        p.nothing_pasted.connect(self._on_paster_nothing_pasted)

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
        self._run(ClassifyRequest(tuple(paths), self.model_key, self.device, self.top_k))

    def classify_again(self) -> None:
        if self.controller.last_paths:
            self.classify(self.controller.last_paths)

    def _run(self, request: ClassifyRequest) -> None:
        if self.sorter.running:
            # A move in progress takes the files from under the classifier ("not found"
            # rows), and its end would relocate the rows of the new run.
            self.message_bar.show_message(
                "Wait until sorting has finished (or press Esc to cancel it), then classify.",
                "info",
            )
            return
        self.message_bar.dismiss()
        self.results.clear()
        self.preview.show_result(None)
        self.stack.setCurrentWidget(self.main_split)
        self.controller.run(request)

    def cancel_run(self) -> None:
        """Esc and the status bar's Cancel: stop the job the status bar shows."""
        self.controller.cancel()
        self.sorter.cancel()

    def _on_paster_paste_saved(self, path: Path) -> None:
        self.receive_paths([str(path)])

    def _on_paster_nothing_pasted(self) -> None:
        self.message_bar.show_message(
            "The clipboard holds no image or image files to classify.", "info"
        )

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
        self._engine_run_started()
        self.status_label.setText(f"Classifying with {self._model_name()} on {self.device}")

    def _on_controller_batch_arrived(self, batch) -> None:
        self.results.append(batch.results)
        self.run_status.show_progress(batch.progress)
        self._engine_seen(batch)

    def _on_controller_progressed(self, progress) -> None:
        self.run_status.show_text(progress.message)

    def _on_controller_run_finished(self, done: int) -> None:
        self.run_status.set_running(False)
        problems = self.results.problem_count()
        self.run_status.show_text("")
        self.status_label.setText(
            f"{done - problems} classified, {problems} with problems ({self._run_title()})"
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
        if not isinstance(exc, AppError):
            sys.excepthook(type(exc), exc, exc.__traceback__)
            return
        actions = []
        if isinstance(exc, DeviceError):
            actions.append(("Use CPU", lambda: self.choose_device("cpu")))
        if isinstance(exc, WeightsError):
            actions += self.weights_actions(model_key or self.model_key)
        self.message_bar.show_message(exc.sentence, "error", actions)

    # ------------------------------------------------------------------ about, theme

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

    def show_log_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_dir())))

    def set_theme(self, name: str) -> None:
        self.settings.setValue("theme", name)
        self.menu_actions.themes[name].setChecked(True)
        apply_theme(name)

    # ------------------------------------------------------------------ layout memory

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:  # at most 90 % of the screen: 1440x900 at 200 % is 720x450 to fit in
            available = self.screen().availableGeometry()
            self.resize(
                min(1200, available.width() * 9 // 10), min(760, available.height() * 9 // 10)
            )
        for key, widget in (
            ("window/state", self),
            ("window/main_split", self.main_split),
            ("window/side_split", self.side_split),
        ):
            state = self.settings.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                widget.restoreState(state)

    def closeEvent(self, event) -> None:  # noqa: N802
        confirm = getattr(getattr(self, "wizard", None), "confirm_close", None)
        if confirm is not None and not confirm():
            event.ignore()  # the user keeps the training that is running
            return
        self.controller.cancel()
        self.sorter.cancel()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/main_split", self.main_split.saveState())
        self.settings.setValue("window/side_split", self.side_split.saveState())
        self.settings.sync()
        super().closeEvent(event)


def _splitter(orientation: Qt.Orientation, first: QWidget, second: QWidget) -> QSplitter:
    """Two panes sharing the space 3 : 2."""
    split = QSplitter(orientation)
    split.addWidget(first)
    split.addWidget(second)
    split.setStretchFactor(0, 3)
    split.setStretchFactor(1, 2)
    return split
