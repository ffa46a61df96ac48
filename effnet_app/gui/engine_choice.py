"""The main window's engine: Model › Engine (which runtime classifies, Fast mode), the
engine a run used in the status bar, and Model › Export….

``EngineChoice`` is a part of ``MainWindow`` (mixed into it), kept in its own module so
the window's file stays layout and wiring. The setting is kept in the app's settings and
handed to ``Session.set_engine``; changing it runs nothing again, the next classification
uses it. Which runtimes are installed is read without importing them; whether this
processor computes in bf16 imports OpenVINO, so it is asked in a Worker
(``EngineController``) when the submenu is first opened.
"""

from __future__ import annotations

import html

from ..core.runtime import choices
from .controllers.engine import EngineController
from .controllers.export import ExportController
from .widgets.export_dialog import ExportDialog

BACKEND_KEY = "engine/backend"  # auto, torch, onnxruntime, openvino
PRECISION_KEY = "engine/precision"  # fp32, or bf16 for Fast mode
FAST_BACKENDS = ("auto", "openvino")  # Fast mode (bf16) runs on OpenVINO only

TIPS = {
    "auto": "The first time a model is used here, time each installed engine on it and "
    "keep the fastest (on a GPU: PyTorch)",
    "torch": "Run the model in PyTorch (always used on a GPU, and for heatmaps)",
    "onnxruntime": "Run a checked ONNX copy of the model in ONNX Runtime",
    "openvino": "Run a checked ONNX copy of the model in Intel's OpenVINO",
}


def tip(sentence: str) -> str:
    """A tooltip that wraps (Qt wraps rich text only) instead of running off the screen."""
    return f"<p>{html.escape(sentence)}</p>"


def backend_setting(value) -> str:
    """A saved engine the menu lists; anything else (a damaged ini) means the default."""
    key = str(value or "").strip().lower()
    return key if key in choices.BACKENDS else choices.default_backend()


class EngineChoice:
    """Which runtime classifies, in which precision, and exporting the model."""

    def _init_engine(self) -> None:
        """Called once the menus exist."""
        self.engine_controller = EngineController(self)
        self.exporter = ExportController(self)
        self.export_dialog: ExportDialog | None = None
        self.run_engine = ""  # what the running (or last) run classifies with
        a = self.menu_actions
        a.engine_group.triggered.connect(self._on_engine_group_triggered)
        a.fast_mode.triggered.connect(self.set_fast_mode)
        a.engine_menu.aboutToShow.connect(self._on_engine_menu_about_to_show)
        a.export_model.triggered.connect(self.export_model)
        self.engine_controller.bf16_probed.connect(self._on_engine_controller_bf16_probed)
        self.controller.noted.connect(self._on_controller_noted)
        self.apply_engine()
        if self.fast_wanted() and "openvino" in choices.installed_runtimes():
            self.engine_controller.probe()  # Fast mode was on last time: find out at once

    # ------------------------------------------------------------------ the setting

    def engine_wanted(self) -> str:
        return backend_setting(self.settings.value(BACKEND_KEY, choices.default_backend()))

    def fast_wanted(self) -> bool:
        return str(self.settings.value(PRECISION_KEY, "fp32")) == "bf16"

    def engine_in_use(self) -> tuple[str, str]:
        """(backend, precision) the next classification runs on: the setting, less what
        this computer cannot do (a runtime uninstalled since, bf16 without support)."""
        backend = self.engine_wanted()
        if backend in choices.RUNTIMES and backend not in choices.installed_runtimes():
            backend = "auto"  # the setting is kept: reinstalling the runtime brings it back
        fast = self.fast_wanted() and self.engine_controller.bf16 and backend in FAST_BACKENDS
        return backend, "bf16" if fast else "fp32"

    def apply_engine(self) -> None:
        backend, precision = self.engine_in_use()
        self.session.set_engine(backend, precision)
        self._show_engine_menu(backend, precision)

    def choose_engine(self, backend: str) -> None:
        """Model › Engine: used from the next classification on."""
        self.settings.setValue(BACKEND_KEY, backend)
        self.apply_engine()
        self._say_next_run(choices.LABELS.get(backend, "the fastest engine"))

    def set_fast_mode(self, on: bool) -> None:
        self.settings.setValue(PRECISION_KEY, "bf16" if on else "fp32")
        self.apply_engine()
        self._say_next_run("Fast mode (bf16)" if on else "full precision (fp32)")

    def _say_next_run(self, what: str) -> None:
        if self.results.count():
            self.message_bar.show_message(
                f"The next classification uses {what}. Press F5 to classify these images "
                "again with it.",
                "info",
            )

    def _on_engine_group_triggered(self, action) -> None:
        self.choose_engine(str(action.data()))

    # ------------------------------------------------------------------ the menu

    def _show_engine_menu(self, backend: str, precision: str) -> None:
        a = self.menu_actions
        installed = choices.installed_runtimes()
        for name, action in a.engines.items():
            action.setChecked(name == backend)
            missing = name in choices.RUNTIMES and name not in installed
            action.setEnabled(not missing)
            version = f" ({choices.LABELS[name]} {installed[name]})" if name in installed else ""
            action.setToolTip(
                tip(
                    f"{choices.LABELS[name]} is not installed here: pip install {name}"
                    if missing
                    else TIPS[name] + version
                )
            )
        usable, why = self._fast_mode_usable(backend, installed)
        a.fast_mode.setEnabled(usable)
        a.fast_mode.setChecked(precision == "bf16")
        a.fast_mode.setToolTip(tip(why))

    def _fast_mode_usable(self, backend: str, installed: dict) -> tuple[bool, str]:
        """Whether Fast mode can be switched on now, and a sentence saying why (not)."""
        if "openvino" not in installed:
            return False, "Fast mode runs on OpenVINO, which is not installed here."
        if backend not in FAST_BACKENDS:
            return False, "Fast mode runs on OpenVINO only: choose Auto or OpenVINO."
        supported = self.engine_controller.bf16
        if supported is None:
            return False, "Finding out whether this processor computes in bf16…"
        if not supported and self.engine_controller.probe_error:
            return False, (
                "OpenVINO could not say whether this processor computes in bf16 "
                f"({self.engine_controller.probe_error}), so Fast mode stays off."
            )
        if not supported:
            return False, (
                "This processor does not compute in bf16 (OpenVINO lists no bf16 support "
                "for it), so Fast mode would not be faster here."
            )
        return True, (
            "Compute in bf16: faster on this processor. Used only once it agrees with full "
            "precision on at least 99.5 % of the reference photos."
        )

    def _on_engine_menu_about_to_show(self) -> None:
        if "openvino" in choices.installed_runtimes() and self.engine_controller.probe():
            self.apply_engine()  # "Finding out…" while the probe runs

    def _on_engine_controller_bf16_probed(self, _supported: bool) -> None:
        self.apply_engine()

    # ------------------------------------------------------------------ the engine a run used

    def _engine_run_started(self) -> None:
        self.run_engine = ""

    def _engine_seen(self, batch) -> None:
        """A batch says which engine classified it (``Classifier.describe()``)."""
        engine = getattr(batch, "engine", "") or ""
        if engine and engine != self.run_engine:
            self.run_engine = engine
            self.status_label.setText(f"Classifying with {self._run_title()}")

    def _run_title(self) -> str:
        """ "EfficientNet-Lite0 on cpu · OpenVINO fp32": what ran, where, on what."""
        title = f"{self._model_name()} on {self._device_name()}"
        return f"{title} · {self.run_engine}" if self.run_engine else title

    def _on_controller_noted(self, notes) -> None:
        """What loading said the user should know: a fallback to PyTorch, and why."""
        self.message_bar.show_message(" ".join(notes), "info")

    # ------------------------------------------------------------------ export

    def export_model(self) -> ExportDialog:
        """Model › Export…: the model in use as ONNX or OpenVINO files, in a window beside."""
        dialog = self.export_dialog
        if dialog is not None and dialog.key != self.model_key and not dialog.isVisible():
            dialog.deleteLater()  # made for another model: start afresh
            dialog = None
        if dialog is None:
            dialog = ExportDialog(self.exporter, self.model_key, self._model_name(), self)
            self.export_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog
