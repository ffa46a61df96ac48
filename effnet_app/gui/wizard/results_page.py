"""Page 4: how good the model is, honestly: accuracy beside the biggest-class baseline,
precision and recall per class, a confusion matrix whose cells show their photos, the
"not sure" threshold in words; then likely mislabelled photos to fix, and "Try it"."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from .confusion import ConfusionMatrix
from .image_grid import ImageGrid
from .labels_tab import LabelsTab
from .try_tab import TryTab


def headline(result) -> str:
    kept = (
        "" if result.config.mode != "finetune" else (
            " Fine-tuning beat the quick head, so the fine-tuned network was kept."
            if result.kept_phase == "finetune"
            else " Fine-tuning did not beat the quick head, so the head was kept."
        )
    )  # fmt: skip
    return (
        f"<h3>{result.accuracy:.0%} correct on {result.val_size} validation photos</h3>"
        f"Always guessing the biggest class would get {result.baseline:.0%}. The "
        f"validation photos were kept aside: the model never trained on them.{kept}"
    )


def calibration_text(result) -> str:
    threshold = result.unknown_threshold
    flagged = result.unknown_flagged
    if not threshold or threshold <= 0:
        return (
            "On the validation photos the model was right even where it was least sure, so "
            "it has no “not sure” threshold: it always names a class."
        )
    return (
        f"Below {threshold:.0%} confidence the model will say “not sure” instead of "
        f"guessing. On the validation photos that is {flagged:.0%} of them, and it avoids "
        f"{result.unknown_errors_avoided} wrong answers."
    )


class ResultsPage(QWizardPage):
    retrain_requested = Signal()

    def __init__(self, state, controller, parent=None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.setTitle("How good is it?")
        self.setSubTitle("Step 4 of 5: measured on photos the model did not train on.")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._summary_tab(), "Results")
        self.labels = LabelsTab(state, self)
        self.labels.retrain_requested.connect(self.retrain_requested)
        self.tabs.addTab(self.labels, "Check labels")
        self.try_tab = TryTab(state, controller, self)
        self.tabs.addTab(self.try_tab, "Try it")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)

    def _summary_tab(self) -> QWidget:
        tab = QWidget()
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "photos"])
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.calibration = QLabel("")
        self.calibration.setWordWrap(True)
        self.matrix = ConfusionMatrix()
        self.matrix.cell_chosen.connect(self.show_cell)
        self.cell_caption = QLabel("Click a cell of the matrix to see its photos.")
        self.cell_caption.setWordWrap(True)
        self.cell_images = ImageGrid()
        self.cell_images.setMaximumHeight(180)
        left = QVBoxLayout()
        left.addWidget(self.per_class, 1)
        left.addWidget(self.calibration)
        right = QVBoxLayout()
        right.addWidget(
            QLabel("<b>Confusion matrix</b>: rows are the true class, columns the guess")
        )
        right.addWidget(self.matrix, 2)
        right.addWidget(self.cell_caption)
        right.addWidget(self.cell_images, 1)
        row = QHBoxLayout(tab)
        row.addLayout(left, 1)
        row.addLayout(right, 2)
        return tab

    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.show_result(self.state.result)

    def show_result(self, result) -> None:
        if result is None:
            return
        self.summary.setText(headline(result))
        self.per_class.setRowCount(len(result.per_class))
        for row, entry in enumerate(result.per_class):
            cells = [
                entry["name"],
                f"{entry['precision']:.0%}",
                f"{entry['recall']:.0%}",
                f"{entry['f1']:.2f}",
                str(entry["support"]),
            ]
            for column, text in enumerate(cells):
                self.per_class.setItem(row, column, QTableWidgetItem(text))
        self.per_class.resizeColumnsToContents()
        self.calibration.setText(calibration_text(result))
        self.matrix.set_matrix(result.classes, result.confusion)
        self.cell_images.set_images([])
        self.cell_caption.setText("Click a cell of the matrix to see its photos.")
        self.labels.show_result(result)
        self.tabs.setTabText(1, f"Check labels ({len(result.label_issues)})")
        self.try_tab.show_result(result)

    def show_cell(self, true_index: int, predicted_index: int) -> None:
        from ...core.training.tools import images_in_cell

        result = self.state.result
        found = images_in_cell(result.val_predictions, true_index, predicted_index)
        true, guess = result.classes[true_index], result.classes[predicted_index]
        what = (
            f"“{true}” photos the model got right"
            if true_index == predicted_index
            else f"“{true}” photos the model took for “{guess}”"
        )
        self.cell_caption.setText(f"{what}: {len(found)}")
        self.cell_images.set_images([(p, p.name, str(p)) for p in found])

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        return self.state.result is not None
