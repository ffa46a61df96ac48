"""Compare models: Quick training on every base model that is on this computer, plotted as
validation accuracy against milliseconds per photo on the chosen device, so the user
picks the trade-off on their own photos. A click on a point chooses that model."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ...core.errors import sentence_of
from .scatter import ComparePlot


class CompareBox(QGroupBox):
    def __init__(self, page) -> None:
        super().__init__("Compare models on your photos")
        self.page = page
        self.controller = page.controller
        self.dataset = None
        self.bases: list[str] = []
        self.button = QPushButton("Compare")
        self.button.setToolTip("Train Quick on each model that is here and plot the results")
        self.button.clicked.connect(self._on_button_clicked)
        self.status = QLabel(
            "Trains Quick on each model whose weights are here, then plots accuracy against "
            "speed. Click a point to choose that model."
        )
        self.status.setWordWrap(True)
        self.plot = ComparePlot()
        self.plot.point_chosen.connect(page.select_base)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        c = self.controller
        c.compare_event.connect(self._on_controller_compare_event)
        c.compare_finished.connect(self._on_controller_compare_finished)
        c.compare_failed.connect(self._on_controller_compare_failed)
        c.compare_cancelled.connect(self._on_controller_compare_cancelled)
        c.jobs_changed.connect(self._update_button)

    def set_catalog(self, catalog) -> None:
        self.bases = [
            m.key for m in catalog.models if m.family in ("efficientnet", "lite") and m.available
        ]
        self._update_button()

    def set_dataset(self, dataset) -> None:
        self.dataset = dataset
        self._update_button()

    def _update_button(self) -> None:
        running = self.controller.comparing
        self.button.setText("Stop" if running else "Compare")
        self.button.setEnabled(running or (self.dataset is not None and len(self.bases) >= 1))

    def _on_button_clicked(self) -> None:
        if self.controller.comparing:
            self.controller.cancel_compare()
            return
        self.dataset = self.page.state.training_data()  # with the user's latest edits
        config = dataclasses.replace(self.page.config(), mode="head")
        self.plot.clear()
        if self.controller.compare(self.bases, self.dataset, config):
            self.status.setText(f"Training Quick on {len(self.bases)} models…")
            self._update_button()
            self.page.completeChanged.emit()

    def _on_controller_compare_event(self, event) -> None:
        from ...core.training.tools import ComparePoint

        if isinstance(event, ComparePoint):
            label = f"{event.name.removeprefix('EfficientNet-')}, {event.ms_per_image:.0f} ms"
            self.plot.add_point(event.base, label, event.ms_per_image, event.accuracy)
        elif getattr(event, "message", None) and hasattr(event, "done"):
            self.status.setText(event.message)
        elif getattr(event, "text", None):
            self.status.setText(event.text)

    def _ended(self, text: str) -> None:
        self.status.setText(text)
        self._update_button()  # again on jobs_changed, once the job has ended

    def _on_controller_compare_finished(self, points) -> None:
        if not points:
            self._ended("No model could be compared.")
            return
        best = max(points, key=lambda p: (p.accuracy, -p.ms_per_image))
        self._ended(
            f"Done: {best.name} was the most accurate ({best.accuracy:.0%}). "
            "Click a point to choose that model."
        )

    def _on_controller_compare_failed(self, exc) -> None:
        self._ended(f"The comparison stopped: {sentence_of(exc)}")

    def _on_controller_compare_cancelled(self) -> None:
        self._ended("The comparison was stopped; the points so far are kept.")
