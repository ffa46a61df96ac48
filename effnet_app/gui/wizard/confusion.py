"""Which classes the new model mixes up: a confusion matrix the user can click into.

Rows are the true class, columns the class predicted. Each cell shows its count and is
shaded by its share of the row: green on the diagonal (right), red elsewhere (mixed
up), so a bad cell stands out however big the class is. A click emits ``cell_chosen``
with (true, predicted), and the wizard shows those images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from .curves import BAD_COLOUR, GOOD_COLOUR, mix

FractionRole = Qt.ItemDataRole.UserRole + 1  # the cell's share of its row, 0..1
MAX_SHADE = 0.85  # a full row keeps a hint of the background, so text stays crisp
NAME_CHARS = 12  # column headers are elided past about this many characters

_Index = QModelIndex | QPersistentModelIndex


def _contrast(background: QColor) -> QColor:
    """Black or white text, whichever reads better on ``background``."""
    r, g, b = background.redF(), background.greenF(), background.blueF()
    return QColor("#111111") if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else QColor("#ffffff")


class _CellDelegate(QStyledItemDelegate):
    """Shade, count and a ring round the chosen cell (selection would hide the shade)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        fraction = index.data(FractionRole)
        if fraction is None:
            super().paint(painter, option, index)
            return
        base = option.palette.color(QPalette.ColorRole.Base)
        text = option.palette.color(QPalette.ColorRole.Text)
        colour = GOOD_COLOUR if index.row() == index.column() else BAD_COLOUR
        fill = mix(base, colour, MAX_SHADE * math.sqrt(float(fraction)))  # small mix-ups show
        if fraction == 0:
            pen = mix(text, base, 0.55)  # zeros recede
        elif fraction > 0.35:
            pen = _contrast(fill)
        else:
            pen = text
        painter.save()
        painter.fillRect(option.rect, fill)
        painter.setFont(option.font)
        painter.setPen(pen)
        label = str(index.data(Qt.ItemDataRole.DisplayRole))
        painter.drawText(option.rect, Qt.AlignmentFlag.AlignCenter, label)
        if option.state & QStyle.StateFlag.State_Selected:
            painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Highlight), 3))
            painter.drawRect(option.rect.adjusted(1, 1, -2, -2))
        painter.restore()


class ConfusionMatrix(QTableWidget):
    """``set_matrix(classes, matrix)``; ``cell_chosen(true, predicted)`` on a click."""

    cell_chosen = Signal(int, int)  # true class index, predicted class index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._classes: tuple[str, ...] = ()
        self._matrix: tuple[tuple[int, ...], ...] = ()
        self.setItemDelegate(_CellDelegate(self))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setShowGrid(True)
        self.setWordWrap(False)
        self.setCornerButtonEnabled(False)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setHighlightSections(False)
        self.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        self._corner = QLabel(self)
        self._corner.setObjectName("confusionCorner")
        self._corner.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._corner.setText("predicted →\ntrue ↓")
        self._corner.setToolTip(
            "Each row is the class an image really is; each column what the model said."
        )
        self.cellClicked.connect(self._on_self_cell_clicked)

    # ------------------------------------------------------------------ data

    def set_matrix(self, classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> None:
        """Show ``matrix[true][predicted]`` counts for ``classes`` (same order)."""
        classes = tuple(str(c) for c in classes)
        matrix = tuple(tuple(int(v) for v in row) for row in matrix)
        if len(matrix) != len(classes) or any(len(row) != len(classes) for row in matrix):
            raise ValueError("the matrix must be square, one row and column per class")
        self._classes, self._matrix = classes, matrix
        self.clear()
        self.setRowCount(len(classes))
        self.setColumnCount(len(classes))
        self._fill_headers()
        for true, row in enumerate(matrix):
            total = sum(row)
            for predicted, count in enumerate(row):
                self.setItem(true, predicted, self._cell(true, predicted, count, total))
        self._fit_sizes()

    def classes(self) -> tuple[str, ...]:
        return self._classes

    def count(self, true: int, predicted: int) -> int:
        return self._matrix[true][predicted]

    def cell_rect(self, true: int, predicted: int) -> QRect:
        """The cell's rectangle in viewport coordinates (where clicks go)."""
        return self.visualRect(self.model().index(true, predicted))

    def _cell(self, true: int, predicted: int, count: int, total: int) -> QTableWidgetItem:
        item = QTableWidgetItem(str(count))
        item.setData(FractionRole, count / total if total else 0.0)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        item.setToolTip(self._describe(true, predicted, count, total))
        return item

    def _describe(self, true: int, predicted: int, count: int, total: int) -> str:
        name, guess = self._classes[true], self._classes[predicted]
        share = f" ({count / total:.0%})" if total else ""
        images = "image" if total == 1 else "images"
        if true == predicted:
            head = f"{count} of {total} '{name}' {images}{share} were recognised correctly."
        else:
            head = f"{count} of {total} '{name}' {images}{share} were taken for '{guess}'."
        return head + ("\nClick to see them." if count else "")

    def _fill_headers(self) -> None:
        fm = QFontMetrics(self.horizontalHeader().font())
        width = fm.horizontalAdvance("x" * NAME_CHARS)
        for i, name in enumerate(self._classes):
            shown = fm.elidedText(name, Qt.TextElideMode.ElideRight, width)
            column = QTableWidgetItem(shown)
            column.setToolTip(f"predicted: {name}")
            self.setHorizontalHeaderItem(i, column)
            row = QTableWidgetItem(fm.elidedText(name, Qt.TextElideMode.ElideRight, width * 1.4))
            row.setToolTip(f"true: {name}")
            self.setVerticalHeaderItem(i, row)

    def _fit_sizes(self) -> None:
        """Square-ish cells wide enough for the longest count and the shown names."""
        fm = QFontMetrics(self.font())
        names = [self.horizontalHeaderItem(i).text() for i in range(self.columnCount())]
        counts = [str(v) for row in self._matrix for v in row] or ["0"]
        widest = max([fm.horizontalAdvance(t) for t in names + counts] + [fm.height() * 2])
        side = widest + fm.height()
        self.horizontalHeader().setDefaultSectionSize(side)
        self.verticalHeader().setDefaultSectionSize(fm.height() * 2 + 4)
        corner = QFontMetrics(self._corner.font())
        self.verticalHeader().setMinimumWidth(corner.horizontalAdvance("predicted →") + 16)
        self.horizontalHeader().setMinimumHeight(corner.height() * 2 + 8)
        self._place_corner()

    # ------------------------------------------------------------------ corner label

    def updateGeometries(self) -> None:
        super().updateGeometries()
        self._place_corner()

    def _place_corner(self) -> None:
        if not hasattr(self, "_corner"):
            return  # called by the base class before __init__ made the label
        frame = self.frameWidth()
        width, height = self.verticalHeader().width(), self.horizontalHeader().height()
        self._corner.setGeometry(frame, frame, width, height)
        self._corner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._corner.setVisible(bool(self._classes))
        self._corner.raise_()

    # ------------------------------------------------------------------ choosing

    def _on_self_cell_clicked(self, row: int, column: int) -> None:
        self.cell_chosen.emit(row, column)

    def keyPressEvent(self, event) -> None:
        keys = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)
        if event.key() in keys and self.currentRow() >= 0 and self.currentColumn() >= 0:
            self.cell_chosen.emit(self.currentRow(), self.currentColumn())
            return
        super().keyPressEvent(event)
