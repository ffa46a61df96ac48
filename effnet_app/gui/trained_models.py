"""The main window's side of the user's trained models: the training wizard, the Manage
trained models dialog, and keeping the model in use right when models come and go.

``TrainedModels`` is a part of ``MainWindow`` (mixed into it), kept in its own module so
the window's file stays layout and wiring. Every change to the models folder ends in a
catalog reload; what must happen once the new list is here (choose the model just
trained) waits in ``_pending_model`` until then.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer

from ..core.models import bundle, zoo
from .controllers.trained_models import TrainedModelsController
from .widgets.manage_models import ManageModelsDialog


def _name(key: str) -> str:
    return key.removeprefix(bundle.KEY_PREFIX)


class TrainedModels:
    """Train, manage and switch to the user's own models."""

    def _init_trained_models(self) -> None:
        self.trained = TrainedModelsController(self)
        self.wizard = None  # the one training wizard, while it is open
        self.manage_dialog = None  # made on first use, then kept
        self._pending_model: str | None = None  # choose it once the catalog lists it
        self._catalog_loading = False
        self._catalog_again = False  # a change came while a load was under way
        t = self.trained
        t.model_renamed.connect(self._on_trained_model_renamed)
        t.model_deleted.connect(self._on_trained_model_deleted)
        t.model_imported.connect(self._on_trained_model_imported)

    # ------------------------------------------------------------------ the catalog

    def reload_catalog(self) -> None:
        """Ask for a new model list; one asked for during a load follows that load, so
        the last list shown always includes the last change."""
        if self._catalog_loading:
            self._catalog_again = True
            return
        self._catalog_loading = True
        self.catalog_controller.load()

    def _catalog_superseded(self) -> bool:
        """Called by ModelChoice as a catalog arrives: True when a change came during its
        load, so it is already out of date and the next load has been asked for instead."""
        self._catalog_loading = False
        if not self._catalog_again:
            return False
        self._catalog_again = False
        QTimer.singleShot(0, self.reload_catalog)  # once this load's Worker has ended
        return True

    def _catalog_shown(self, catalog) -> None:
        """Called by ModelChoice once a catalog is shown: do what waited for it."""
        if self.manage_dialog is not None:
            self.manage_dialog.set_catalog(catalog)
        key, self._pending_model = self._pending_model, None
        if key is None:
            return
        if catalog.model(key) is None:
            self.message_bar.show_message(
                f"{_name(key)} was saved but is not in the model list; see the log.", "warning"
            )
        else:
            self.choose_model(key)

    def _catalog_failed(self) -> None:
        self._catalog_loading = self._catalog_again = False

    # ------------------------------------------------------------------ the wizard

    def open_training_wizard(self):
        """Model › Train a new model…: one wizard at a time, beside the window (so the
        user can still classify while it trains)."""
        if self.wizard is not None:
            self.wizard.show()
            self.wizard.raise_()
            self.wizard.activateWindow()
            return self.wizard
        from .wizard.wizard import TrainWizard  # torch-free, but only needed now

        wizard = TrainWizard(parent=self, settings=self.settings, catalog=self.catalog)
        wizard.model_saved.connect(self.on_model_trained)
        wizard.finished.connect(self._on_wizard_finished)
        self.wizard = wizard
        wizard.show()
        return wizard

    def _on_wizard_finished(self, _result: int) -> None:
        wizard, self.wizard = self.wizard, None
        if wizard is not None:
            wizard.deleteLater()  # the next one starts afresh

    def on_model_trained(self, key: str, use_now: bool) -> None:
        """The wizard saved ``key``: list it, and classify with it when the user chose to."""
        if use_now:
            self._pending_model = key
        self.message_bar.show_message(f"Saved the trained model {_name(key)}.", "info")
        self.reload_catalog()

    # ------------------------------------------------------------------ managing

    def manage_models(self) -> ManageModelsDialog:
        """Model › Manage trained models…: a window beside the main one."""
        if self.manage_dialog is None:
            dialog = ManageModelsDialog(self.trained, self)
            dialog.train_requested.connect(self.open_training_wizard)
            dialog.use_requested.connect(self.choose_model)
            self.manage_dialog = dialog
        if self.catalog is not None:
            self.manage_dialog.set_catalog(self.catalog)
        self.manage_dialog.show()
        self.manage_dialog.raise_()
        self.manage_dialog.activateWindow()
        return self.manage_dialog

    def _on_trained_model_renamed(self, old: str, new: str) -> None:
        if old == self.model_key:  # the same network under its new name: no new run
            self.model_key = new
            self.settings.setValue("model", new)
            self.message_bar.show_message(
                f"The model in use was renamed: {_name(old)} is now {_name(new)}.", "info"
            )
        self.reload_catalog()

    def _on_trained_model_deleted(self, key: str) -> None:
        if key == self.model_key:
            self.model_key = zoo.DEFAULT_MODEL
            self.settings.setValue("model", zoo.DEFAULT_MODEL)
            fallback = self._model_name(zoo.DEFAULT_MODEL)
            again = (
                " Press F5 to classify these images again with it." if self.results.count() else ""
            )
            self.message_bar.show_message(
                f"{_name(key)}, the model in use, was deleted; {fallback} classifies from "
                f"now on.{again}",
                "info",
            )
        self.reload_catalog()

    def _on_trained_model_imported(self, key: str) -> None:
        self.message_bar.show_message(
            f"Imported {_name(key)}; choose it in the model list to classify with it.", "info"
        )
        self.reload_catalog()
