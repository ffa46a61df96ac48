"""The results: a filter bar, the table (model/view with painted bars) and the summary."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..models.results_model import (
    CONFIDENCE,
    FILE,
    PREDICTIONS,
    PROBLEM,
    THUMBNAIL,
    ResultRole,
    ResultsFilterProxy,
    ResultsModel,
    connect_thumbnails,
)
from ..models.summary_model import SummaryModel
from ..thumbnails import ThumbnailCache
from .confidence_delegate import ConfidenceDelegate

THUMBNAIL_SHOWN = 64  # logical pixels in the table


class ResultsPanel(QWidget):
    result_selected = Signal(object)  # ImageResult or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ResultsModel(self)
        self.proxy = ResultsFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.summary = SummaryModel(self.model, self)
        self.thumbnails = ThumbnailCache(parent=self)
        connect_thumbnails(self.model, self.thumbnails)
        self._build_filter_bar()
        self._build_table()
        self._build_summary()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.filter_bar)
        layout.addWidget(self.table, 1)

    def _build_filter_bar(self) -> None:
        self.label_filter = QLineEdit()
        self.label_filter.setPlaceholderText("Filter by label or file name")
        self.label_filter.setClearButtonEnabled(True)
        self.below_box = QCheckBox("Confidence below")
        self.below_value = QDoubleSpinBox()
        self.below_value.setRange(1, 100)
        self.below_value.setDecimals(0)
        self.below_value.setValue(50)
        self.below_value.setSuffix(" %")
        self.problems_box = QCheckBox("Problems only")
        self.count_label = QLabel("")
        self.filter_bar = QHBoxLayout()
        for widget in (self.label_filter, self.below_box, self.below_value, self.problems_box):
            self.filter_bar.addWidget(widget)
        self.filter_bar.addStretch()
        self.filter_bar.addWidget(self.count_label)
        self.label_filter.textChanged.connect(self.proxy.set_label_filter)
        self.below_box.toggled.connect(self._on_below_changed)
        self.below_value.valueChanged.connect(self._on_below_changed)
        self.problems_box.toggled.connect(self.proxy.set_problems_only)
        self.proxy.counts_changed.connect(self._on_proxy_counts_changed)

    def _build_table(self) -> None:
        table = QTableView()
        table.setModel(self.proxy)
        self.delegate = ConfidenceDelegate(table, lines=3)
        table.setItemDelegate(self.delegate)
        table.setSortingEnabled(True)
        table.sortByColumn(THUMBNAIL, Qt.SortOrder.AscendingOrder)  # arrival order
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setIconSize(
            table.iconSize().scaled(
                THUMBNAIL_SHOWN, THUMBNAIL_SHOWN, Qt.AspectRatioMode.IgnoreAspectRatio
            )
        )
        table.verticalHeader().hide()
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.verticalHeader().setDefaultSectionSize(
            self.delegate.row_height(table.font(), THUMBNAIL_SHOWN)
        )
        header = table.horizontalHeader()
        header.setSectionResizeMode(THUMBNAIL, QHeaderView.ResizeMode.Fixed)
        table.setColumnWidth(THUMBNAIL, THUMBNAIL_SHOWN + 12)
        table.setColumnWidth(FILE, 160)
        table.setColumnWidth(PREDICTIONS, 280)
        table.setColumnWidth(CONFIDENCE, 100)
        header.setSectionResizeMode(PROBLEM, QHeaderView.ResizeMode.Stretch)
        table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)
        self.table = table

    def _build_summary(self) -> None:
        view = QTableView()
        view.setModel(self.summary)
        view.verticalHeader().hide()
        view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setToolTip("Images per top-1 label; click a label to show only those images")
        view.clicked.connect(self._on_summary_clicked)
        self.summary_view = view

    # ------------------------------------------------------------------ data

    def append(self, results) -> None:
        first = self.model.rowCount() == 0
        self.model.append(results)
        if first and self.model.rowCount():
            self.table.selectionModel().setCurrentIndex(
                self.proxy.index(0, FILE),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )

    def clear(self) -> None:
        self.thumbnails.clear_pending()
        self.model.clear()

    def all_results(self) -> list:
        return self.model.results()

    def count(self) -> int:
        return self.model.rowCount()

    def problem_count(self) -> int:
        return sum(1 for r in self.model.results() if r.problem)

    def visible_results(self) -> list:
        return [self.proxy.index(row, 0).data(ResultRole) for row in range(self.proxy.rowCount())]

    # ------------------------------------------------------------------ handlers

    def _on_below_changed(self, *_) -> None:
        on = self.below_box.isChecked()
        self.proxy.set_confidence_below(self.below_value.value() / 100 if on else None)

    def _on_proxy_counts_changed(self, shown: int, total: int) -> None:
        self.count_label.setText(f"{shown} of {total}" if shown != total else f"{total} images")

    def _on_table_current_changed(self, current, previous) -> None:
        self.result_selected.emit(current.data(ResultRole) if current.isValid() else None)

    def _on_summary_clicked(self, index) -> None:
        label = self.summary.label(index.row())
        if label is None:
            self.label_filter.clear()  # a label picked before would hide every problem row
            self.problems_box.setChecked(True)
        else:
            self.problems_box.setChecked(False)
            self.label_filter.setText(label)
