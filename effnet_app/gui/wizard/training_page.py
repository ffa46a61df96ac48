"""Page 3: training runs in a worker; live curves, progress with ETA, a log, and Cancel."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from ...core.errors import sentence_of
from ..widgets.run_status import format_eta
from .curves import Curves

PHASES = {
    "features": "Reading your photos through the network",
    "head": "Fitting the new head",
    "checks": "Looking for photos that may be mislabelled",
    "finetune": "Fine-tuning the network",
    "calibrate": "Calibrating confidence",
}


class TrainingPage(QWizardPage):
    def __init__(self, state, controller, options_page, parent=None) -> None:
        super().__init__(parent)
        controller.jobs_changed.connect(self.completeChanged)
        self.state, self.controller, self.options = state, controller, options_page
        self.setTitle("Training")
        self.setSubTitle("Step 3 of 5: the model learns your classes. You can keep using the app.")
        self.phase = QLabel("")
        self.bar = QProgressBar()
        self.bar_text = QLabel("")
        self.curves = Curves()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMaximumHeight(130)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.clicked.connect(self.ask_cancel)
        self.back_button = QPushButton("Change options")
        self.back_button.clicked.connect(self._back_to_options)
        self.back_button.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.bar_text)
        row.addWidget(self.cancel_button)
        row.addWidget(self.back_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.phase)
        layout.addLayout(row)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.log)
        c = controller
        c.train_event.connect(self._on_controller_train_event)
        c.train_finished.connect(self._on_controller_train_finished)
        c.train_failed.connect(self._on_controller_train_failed)
        c.train_cancelled.connect(self._on_controller_train_cancelled)

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.start()

    def start(self) -> None:
        """Train with the options page's settings, on the photos with the user's changes."""
        data = self.state.training_data()
        self.controller.cancel_try()  # a try-out of the last model must not land later
        self.state.result = None
        self.curves.clear()
        self.log.clear()
        self.bar.setRange(0, 0)
        self.bar_text.setText("")
        self.cancel_button.setVisible(True)
        self.back_button.setVisible(False)
        self.completeChanged.emit()
        config = self.options.config()
        self.state.config = config
        edits = self.state.edits
        self.state.trained_on = data
        self.state.trained_excluded = tuple(sorted(edits.excluded)) if edits else ()
        self.state.edits_at_run = len(edits.edits) if edits else 0
        if not data.usable:
            self._failed(data.errors[0].sentence)
            return
        mode = "Thorough" if config.mode == "finetune" else "Quick"
        self.curves.set_epochs_planned(config.epochs if config.mode == "finetune" else 0)
        self._say(f"Training {config.base} ({mode}) on {len(data.samples)} photos.")
        if not self.controller.train(config, data):
            self._failed("Another training or comparison is still running; wait for it to end.")

    # ------------------------------------------------------------------ events
    def _on_controller_train_event(self, event) -> None:
        from ...core.jobs import Progress
        from ...core.training.config import TrainBatch, TrainEpoch, TrainMessage, TrainPhase

        if isinstance(event, TrainPhase):
            self.phase.setText(f"<b>{PHASES.get(event.name, event.message)}</b>")
            self._say(event.message)
        elif isinstance(event, TrainBatch):
            self._show_progress(event.progress)
            self.curves.add_batch_loss(event.loss, self._epoch_fraction(event))
        elif isinstance(event, TrainEpoch):
            self.curves.add_epoch(event)
            label = "head" if event.phase == "head" else f"epoch {event.epoch}"
            self._say(
                f"{label}: train loss {event.train_loss:.3f}, accuracy {event.train_acc:.1%}; "
                f"validation loss {event.val_loss:.3f}, accuracy {event.val_acc:.1%}"
            )
        elif isinstance(event, TrainMessage):
            self._say(event.text if event.level == "info" else f"Note: {event.text}")
        elif isinstance(event, Progress):
            self._show_progress(event)

    def _epoch_fraction(self, event) -> float | None:
        """How far into its epoch a fine-tuning batch is (progress counts the whole run)."""
        config, total = self.state.config, event.progress.total
        if config is None or event.epoch < 1 or not total or config.mode != "finetune":
            return None
        per_epoch = total / max(1, config.epochs)
        return min(1.0, max(0.0, (event.progress.done - (event.epoch - 1) * per_epoch) / per_epoch))

    def _show_progress(self, progress) -> None:
        if progress.total:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.done)
        eta = format_eta(progress.eta) if progress.total and progress.done < progress.total else ""
        self.bar_text.setText(" · ".join(t for t in (progress.message, eta) if t))

    def _say(self, text: str) -> None:
        self.state.events.append(text)
        self.log.appendPlainText(text)

    def _on_controller_train_finished(self, result) -> None:
        self.state.result = result
        self.cancel_button.setVisible(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.bar_text.setText(f"Done in {result.seconds:.0f} s")
        self._say(f"Done: validation accuracy {result.accuracy:.1%}.")
        self.completeChanged.emit()
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            wizard.next()

    def _failed(self, text: str) -> None:
        self.phase.setText("<b>Training stopped</b>")
        self._say(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar_text.setText("")
        self.cancel_button.setVisible(False)
        self.back_button.setVisible(True)

    def _on_controller_train_failed(self, exc) -> None:
        if isinstance(exc, BaseException) and self.state.result is None:
            self._failed(sentence_of(exc))

    # ------------------------------------------------------------------ cancel
    def ask_cancel(self) -> bool:
        """Ask, then cancel; True when the training is stopping (or was not running)."""
        if not self.controller.training:
            return True
        answer = QMessageBox.question(
            self,
            "Stop training?",
            "Stop training now? Nothing will be saved; you can change the options and train again.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.controller.cancel_training()
        return True

    def _on_controller_train_cancelled(self) -> None:
        self.options.show_note("Training was cancelled; nothing was saved.")
        self._back_to_options()

    def _back_to_options(self) -> None:
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            wizard.back()

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.state.result is not None
