"""How many files got each top-1 label: a small table kept in step with a ResultsModel.

Rows are sorted by count, highest first (ties by label), with a "Problems" row last when
any file could not be classified. Each batch of new results updates the counts in place:
new labels are inserted, then the rows are re-sorted as a layout change, so a selected
label stays selected while results stream in.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QFont, QGuiApplication

from .base import FlatTableModel
from .results_model import ResultRole, ResultsModel, problem_colour

LABEL, COUNT = range(2)
HEADERS = ("Label", "Count")
PROBLEMS_TEXT = "Problems"
LabelRole = Qt.ItemDataRole.UserRole + 1  # the label, or None on the Problems row

_Index = QModelIndex | QPersistentModelIndex
_PROBLEMS = None  # the key of the Problems row: no label can collide with it


class SummaryModel(FlatTableModel):
    """Label -> count of files whose top-1 prediction it is."""

    HEADERS = HEADERS

    def __init__(self, results: ResultsModel | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._counts: dict[str | None, int] = {}
        self._order: list[str | None] = []  # row -> key, in display order
        self._source: ResultsModel | None = None
        if results is not None:
            self.set_source(results)

    def set_source(self, results: ResultsModel) -> None:
        """Follow ``results`` (and stop following the previous model)."""
        if self._source is not None:
            self._wire(self._source, connect=False)
        self._source = results
        self._wire(results, connect=True)
        self._on_results_reset()

    def _wire(self, model: ResultsModel, connect: bool) -> None:
        for signal, slot in (
            (model.rowsInserted, self._on_results_rows_inserted),
            (model.rowsRemoved, self._on_results_reset),
            (model.modelReset, self._on_results_reset),
        ):
            if connect:
                signal.connect(slot)
            else:
                signal.disconnect(slot)

    # ------------------------------------------------------------------ reading

    def counts(self) -> dict[str, int]:
        """Top-1 label -> number of files, most frequent first (problems not included)."""
        return {key: self._counts[key] for key in self._order if key is not _PROBLEMS}

    def problem_count(self) -> int:
        return self._counts.get(_PROBLEMS, 0)

    def label(self, row: int) -> str | None:
        return self._order[row]

    # ------------------------------------------------------------------ updating

    def _on_results_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        added: dict[str | None, int] = {}
        for row in range(first, last + 1):
            result = self._source.index(row, 0).data(ResultRole)
            top1 = result.top1
            key = top1.label if top1 is not None and result.problem is None else _PROBLEMS
            added[key] = added.get(key, 0) + 1
        self._add(added)

    def _on_results_reset(self, *_) -> None:
        self.beginResetModel()
        self._counts.clear()
        self._order.clear()
        self.endResetModel()
        if self._source is not None and self._source.rowCount():
            self._on_results_rows_inserted(QModelIndex(), 0, self._source.rowCount() - 1)

    def _add(self, added: dict[str | None, int]) -> None:
        new_keys = [key for key in added if key not in self._counts]
        if new_keys:
            start = len(self._order)
            self.beginInsertRows(QModelIndex(), start, start + len(new_keys) - 1)
            self._order.extend(new_keys)
            for key in new_keys:
                self._counts[key] = 0
            self.endInsertRows()
        for key, count in added.items():
            self._counts[key] += count
        self._resort()
        if self._order:
            last = self.index(len(self._order) - 1, COUNT)
            self.dataChanged.emit(self.index(0, COUNT), last, [Qt.ItemDataRole.DisplayRole])

    def _resort(self) -> None:
        wanted = sorted(self._order, key=self._sort_key)
        if wanted == self._order:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        keys = [self._order[index.row()] for index in persistent]
        self._order = wanted
        new_rows = {key: row for row, key in enumerate(wanted)}
        moved = [
            self.index(new_rows[key], i.column()) for key, i in zip(keys, persistent, strict=True)
        ]
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _sort_key(self, key: str | None) -> tuple[bool, int, str]:
        return key is _PROBLEMS, -self._counts[key], (key or "").casefold()

    # ------------------------------------------------------------------ Qt model API

    def row_count(self) -> int:
        return len(self._order)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._order):
            return None
        key = self._order[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == COUNT:
                return self._counts[key]
            return PROBLEMS_TEXT if key is _PROBLEMS else key
        if role == LabelRole:
            return key
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == COUNT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if key is _PROBLEMS and role == Qt.ItemDataRole.ForegroundRole:
            return problem_colour(QGuiApplication.palette())
        if key is _PROBLEMS and role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setItalic(True)
            return font
        return None
