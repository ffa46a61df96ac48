"""Page 5: a name (a sensible default), where it goes, and "Use this model now"; the save is
atomic (a whole model folder or none) and runs in a worker."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWizardPage

from ...core import paths
from ...core.errors import AppError, sentence_of


class SavePage(QWizardPage):
    def __init__(self, state, controller, parent=None) -> None:
        super().__init__(parent)
        controller.jobs_changed.connect(self.completeChanged)
        self.state, self.controller = state, controller
        self.bundle = None
        self.setTitle("Save and use")
        self.setSubTitle("Step 5 of 5: keep the model, under a name you will recognise.")
        self.name = QLineEdit()
        self.name.textChanged.connect(self._on_name_edited)
        self.where = QLabel("")
        self.where.setWordWrap(True)
        self.replace = QCheckBox("Replace the model that has this name")
        self.replace.setVisible(False)
        self.replace.toggled.connect(self._on_name_changed)
        self.use_now = QCheckBox("Use this model now in the main window")
        self.use_now.setChecked(True)
        self.what = QLabel("")
        self.what.setWordWrap(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("", self.replace)
        form.addRow("Saved in", self.where)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.what)
        layout.addWidget(self.use_now)
        layout.addWidget(self.status)
        layout.addStretch(1)
        controller.saved.connect(self._on_controller_saved)
        controller.save_failed.connect(self._on_controller_save_failed)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        from ...core.models import bundle

        result = self.state.result
        self.bundle = None
        self.status.setText("")
        self.where.setText(str(paths.models_dir()))
        if result is not None and not self.name.text():
            self.name.setText(bundle.default_name(result.classes, result.config.base))
        if result is not None:
            shown = ", ".join(result.classes[:8]) + ("…" if len(result.classes) > 8 else "")
            self.what.setText(
                f"The model knows {len(result.classes)} classes ({shown}) and was "
                f"{result.accuracy:.0%} correct on its validation photos. It is saved as a "
                "folder that holds the whole network: copy it to another computer and it "
                "works there too, offline. Model › Manage trained models… renames or "
                "deletes it later."
            )
        edits = self.state.edits
        if edits is not None and len(edits.edits) != self.state.edits_at_run:
            self.what.setText(
                self.what.text() + " <b>You changed labels after this run: it does not "
                "know about them. Go back and press Retrain to include them.</b>"
            )
        self._on_name_changed()
        self.setButtonText(self.wizard().WizardButton.FinishButton, "Save")

    def _problem(self) -> str | None:
        """Why the name cannot be used as it is, or None."""
        from ...core.models import bundle

        try:
            name = bundle.validate_name(self.name.text().strip())
        except AppError as exc:
            return exc.sentence
        taken = (paths.models_dir() / name).exists()
        self.replace.setVisible(taken)
        if taken and not self.replace.isChecked():
            return f"A model called {name} exists: choose another name, or replace it."
        return None

    def _on_name_edited(self, *_args) -> None:
        self.replace.setChecked(False)  # replacing one model is not consent for another
        self._on_name_changed()

    def _on_name_changed(self, *_args) -> None:
        self.status.setText(self._problem() or "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.state.result is not None and self._problem() is None

    def validatePage(self) -> bool:  # noqa: N802 - Qt's name
        """Finish ("Save"): start the save; the wizard closes once it is on disk."""
        if self.bundle is not None:
            return True
        started = self.controller.save(
            self.state.result,
            self.name.text().strip(),
            self.state.trained_on or self.state.training_data(),
            replace=self.replace.isChecked() and self.replace.isVisible(),
            excluded=self.state.trained_excluded,
        )
        if started:
            self.status.setText("Saving…")
            self.setEnabled(False)
        return False

    def _on_controller_saved(self, saved) -> None:
        self.bundle = saved
        self.setEnabled(True)
        self.status.setText(f"Saved as {saved.name} in {saved.path}.")
        self.wizard().finish_saved(saved.key, self.use_now.isChecked())

    def _on_controller_save_failed(self, exc) -> None:
        self.setEnabled(True)
        self.status.setText(f"Not saved: {sentence_of(exc)}")
