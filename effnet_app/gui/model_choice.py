"""The main window's model and device choice: the catalog, the two pickers, and getting
a model's weights (download with progress, a mirror, or an imported file).

``ModelChoice`` is a part of ``MainWindow`` (mixed into it), kept in its own module so the
window's file stays layout and wiring; it uses the window's widgets and controllers.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ..core.devices import resolve_device
from ..core.errors import AppError
from ..core.models import zoo
from ..core.models.bundle import KEY_PREFIX
from ..core.models.weights import MIRROR_ENV
from .widgets.download_dialog import DownloadDialog, ask_mirror, ask_weights_file


def device_setting(value) -> str:
    """Keys the picker can show; anything else ("gpu7") falls back to Auto, as models do."""
    key = str(value).strip().lower()
    if key in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", key):
        return key
    return "auto"


class ModelChoice:
    """Which model classifies, on which device, and getting its weights."""

    def _connect_model_controllers(self) -> None:
        self.catalog_controller.catalog_loaded.connect(self._on_catalog_controller_catalog_loaded)
        self.catalog_controller.catalog_failed.connect(self._on_catalog_controller_catalog_failed)
        w = self.weights
        w.import_started.connect(self._on_weights_import_started)
        w.import_finished.connect(self._on_weights_import_finished)
        w.import_failed.connect(self._on_weights_import_failed)

    def _model_name(self, key: str | None = None) -> str:
        key = key or self.model_key
        info = self.catalog.model(key) if self.catalog else None
        return info.name if info else key

    def _device_name(self) -> str:
        try:  # torch is loaded once a run has finished, so this is cheap here
            return resolve_device(self.device)
        except AppError:
            return self.device

    # ------------------------------------------------------------------ the catalog

    def _on_catalog_controller_catalog_loaded(self, catalog) -> None:
        if self._catalog_superseded():  # TrainedModels: a newer list is on its way
            return
        self.catalog = catalog
        if catalog.model(self.model_key) is None:
            self._model_gone(self.model_key)
            self.model_key = zoo.DEFAULT_MODEL
        self.model_picker.set_catalog(catalog, self.model_key)
        if self.device == "cuda" and any(d.key == "cuda:0" for d in catalog.devices):
            self.device = "cuda:0"  # plain "cuda" means the first GPU, as the CLI reads it
        self.device_picker.set_devices(catalog.devices, self.device)
        self.about_model.show_model(catalog, self.model_key)
        self._warn_if_device_missing(catalog)
        self._catalog_shown(catalog)  # TrainedModels: a model waiting to be chosen
        self.catalog_loaded.emit(catalog)

    def _model_gone(self, key: str) -> None:
        """A trained model chosen last time was deleted or moved outside the app."""
        if key.startswith(KEY_PREFIX):
            default = self.catalog.model(zoo.DEFAULT_MODEL)
            self.message_bar.show_message(
                f"The trained model {key.removeprefix(KEY_PREFIX)} is no longer in the models "
                f"folder; {default.name if default else zoo.DEFAULT_MODEL} classifies instead.",
                "info",
            )

    def _on_catalog_controller_catalog_failed(self, exc: BaseException) -> None:
        self._catalog_failed()
        self.show_problem(exc)

    def _warn_if_device_missing(self, catalog) -> None:
        choice = next((d for d in catalog.devices if d.key == self.device), None)
        if self.device.startswith("cuda") and (choice is None or not choice.available):
            reason = choice.reason if choice else "That CUDA device does not exist here."
            self.message_bar.show_message(
                f"Your settings choose {self.device}, which is not available: {reason}",
                "warning",
                [("Use CPU", lambda: self.choose_device("cpu"))],
            )

    def mark_available(self, key: str) -> None:
        if self.catalog is None:
            return
        models = tuple(
            dataclasses.replace(m, available=True) if m.key == key else m
            for m in self.catalog.models
        )
        self.catalog = dataclasses.replace(self.catalog, models=models)
        self.model_picker.set_catalog(self.catalog, self.model_key)

    # ------------------------------------------------------------------ choosing

    def _on_model_picker_model_chosen(self, key: str) -> None:
        info = self.catalog.model(key) if self.catalog else None
        if key == self.model_key and info is not None and info.available:
            return  # the picker re-picked the model in use: keep its results, no re-run
        self.choose_model(key)

    def choose_model(self, key: str) -> bool:
        """Switch model; download its weights first when needed. False when it could not."""
        info = self.catalog.model(key) if self.catalog else None
        if info is not None and not info.available and not self.download_weights(key):
            self.model_picker.select(self.model_key)
            return False
        self.model_key = key
        self.settings.setValue("model", key)
        self.model_picker.select(key)
        self.about_model.show_model(self.catalog, key)
        self.classify_again()
        return True

    def choose_device(self, key: str) -> None:
        """Switch device. A run that failed (no CUDA, out of memory) runs again on it."""
        self.device = key
        self.settings.setValue("device", key)
        self.device_picker.select(key)
        self.message_bar.dismiss()
        failed = self.controller.failed
        if failed is not None:
            self._run(dataclasses.replace(failed, device=key))

    # ------------------------------------------------------------------ weights

    def weights_actions(self, key: str) -> list:
        return [
            ("Retry", lambda: self.choose_model(key)),
            ("Use a mirror…", lambda: self.set_mirror(retry_key=key)),
            ("Import file…", lambda: self.import_weights(key)),
        ]

    def mirror_url(self) -> str | None:
        mirror = self.settings.value("weights/mirror", "") or os.environ.get(MIRROR_ENV, "")
        return str(mirror) or None

    def download_weights(self, key: str) -> bool:
        """Download ``key``'s weights with a progress dialog; on failure say so in the bar."""
        name = self._model_name(key)
        dialog = DownloadDialog(self.weights, key, name, self.mirror_url(), self)
        dialog.exec()
        dialog.deleteLater()
        if dialog.path is not None:
            self.mark_available(key)
            self.message_bar.show_message(f"{name} is ready: its weights were saved.", "info")
            return True
        if dialog.error is not None:
            self.show_problem(dialog.error, key)
        elif dialog.cancelled:
            self.message_bar.show_message(
                f"Download of {name} cancelled; nothing was kept.", "info"
            )
        return False

    def set_mirror(self, retry_key: str | None = None) -> None:
        text = ask_mirror(self, str(self.settings.value("weights/mirror", "") or ""))
        if text is None:
            return
        self.settings.setValue("weights/mirror", text)
        if retry_key:
            self.choose_model(retry_key)

    def import_weights(self, key: str) -> None:
        file = ask_weights_file(self, self._last_folder())
        if file:
            self.weights.import_file(key, file)

    def _on_weights_import_started(self, key: str, file) -> None:
        self.status_label.setText(f"Checking {Path(file).name}…")

    def _on_weights_import_finished(self, key: str, file) -> None:
        self.status_label.setText(f"Imported {Path(file).name}")
        self.mark_available(key)
        self.message_bar.show_message(f"Imported {Path(file).name}; the model is ready.", "info")
        self.choose_model(key)

    def _on_weights_import_failed(self, key: str, file, exc: BaseException) -> None:
        self.status_label.setText(f"Could not import {Path(file).name}")  # not "Checking…"
        self.show_problem(exc, key)
