"""Train a new model: from folders of labelled photos to a model in use, in five pages.

A view over the training engine (``core.training``): every long step runs in a Worker
through ``TrainingController``; the pages only show what its signals say. Back and Next
keep what was entered; the folder and the options are remembered in the settings.
Closing while something runs asks first, then cancels it cleanly.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWizard

from ..controllers.catalog import CatalogController
from ..settings import app_settings
from .controller import TrainingController
from .data_page import DataPage
from .options_page import OptionsPage
from .results_page import ResultsPage
from .save_page import SavePage
from .state import WizardState
from .training_page import TrainingPage

DATA, OPTIONS, TRAINING, RESULTS, SAVE = range(5)
_BUTTONS = QWizard.WizardButton
NORMAL = [_BUTTONS.Stretch, _BUTTONS.BackButton, _BUTTONS.NextButton, _BUTTONS.FinishButton,
          _BUTTONS.CancelButton]  # fmt: skip
NO_BACK = [_BUTTONS.Stretch, _BUTTONS.NextButton, _BUTTONS.FinishButton, _BUTTONS.CancelButton]


class TrainWizard(QWizard):
    model_saved = Signal(str, bool)  # the new model's key, "use it now"

    def __init__(self, parent=None, settings=None, catalog=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a new model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.settings = settings if settings is not None else app_settings()
        self.state = WizardState()
        self.controller = TrainingController(self)
        self.data_page = DataPage(self.state, self.controller, self.settings)
        self.options_page = OptionsPage(self.state, self.controller, self.settings)
        self.training_page = TrainingPage(self.state, self.controller, self.options_page)
        self.results_page = ResultsPage(self.state, self.controller)
        self.save_page = SavePage(self.state, self.controller)
        for page_id, page in enumerate(
            (self.data_page, self.options_page, self.training_page, self.results_page,
             self.save_page)
        ):  # fmt: skip
            self.setPage(page_id, page)
        self.results_page.retrain_requested.connect(self.retrain)
        self.currentIdChanged.connect(self._on_self_current_id_changed)
        self._catalogs = CatalogController(self)
        self._catalogs.catalog_loaded.connect(self._on_catalogs_catalog_loaded)
        self._catalogs.catalog_failed.connect(self._on_catalogs_catalog_failed)
        if catalog is not None:
            self._on_catalogs_catalog_loaded(catalog)
        else:
            self._catalogs.load()
        self.resize(1180, 760)

    def reload_catalog(self) -> None:
        self._catalogs.load()

    def _on_catalogs_catalog_loaded(self, catalog) -> None:
        self.options_page.set_catalog(catalog)
        self.controller.preload()  # torch is loaded by now: nothing imports it twice

    def _on_catalogs_catalog_failed(self, exc) -> None:
        from ...core.errors import sentence_of

        self.options_page.show_note(f"The list of models could not be made: {sentence_of(exc)}")

    def _on_self_current_id_changed(self, page_id: int) -> None:
        # Training and its results have no Back: the way back is "Cancel training" or
        # "Change options", which say what happens to the run.
        self.setButtonLayout(NO_BACK if page_id in (TRAINING, RESULTS) else NORMAL)
        if page_id == RESULTS:
            self.results_page.setButtonText(_BUTTONS.NextButton, "Save…")

    def retrain(self) -> None:
        """Results › Retrain: back to the training page, which trains again."""
        if self.currentId() == RESULTS:
            self.back()
            self.training_page.start()

    def change_options(self) -> None:
        while self.currentId() > OPTIONS:
            self.back()

    def finish_saved(self, key: str, use_now: bool) -> None:
        self.model_saved.emit(key, use_now)
        self.accept()

    # ------------------------------------------------------------------ closing
    def _busy_text(self) -> str | None:
        if self.controller.saving:
            return "The model is being saved. Close anyway? It may or may not be saved."
        if self.controller.training:
            return "Training is still running. Stop it and close? Nothing will be saved."
        if self.controller.comparing:
            return "The model comparison is still running. Stop it and close?"
        return None

    def reject(self) -> None:
        """Cancel, Esc or the window's close button (QDialog's closeEvent calls this): ask
        when a run would be lost, then cancel everything and close."""
        if self.confirm_close():
            super().reject()

    def confirm_close(self) -> bool:
        text = self._busy_text()
        if text is not None:
            answer = QMessageBox.question(
                self,
                "Close the wizard?",
                text,
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.controller.cancel_all()
        self.options_page.save_settings()
        return True
