"""The classes found in the user's folder: how many images each, what is wrong, a few examples.

One row per class. The image count has a bar as long as its share of the biggest class,
so an unbalanced dataset shows at a glance; problems are counted (unreadable, exact
duplicates, far too small) with the checks' own sentences in the tooltip; three example
thumbnails let the user see that the folder holds what they think it holds.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QFontMetrics, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ..thumbnails import ThumbnailCache
from ..widgets.confidence_delegate import bar_colours
from .image_grid import broken_icon, placeholder_icon

CLASS, IMAGES, PROBLEMS, EXAMPLES = range(4)
HEADERS = ("Class", "Images", "Problems", "Examples")
CountRole = Qt.ItemDataRole.UserRole + 1  # int: usable images of the class
ExamplesRole = Qt.ItemDataRole.UserRole + 2  # list of (path str, QPixmap | None, failed reason)
EXAMPLE_SIZE = 48  # logical pixels
PAD = 6
_LEVELS = {
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
}

_Index = QModelIndex | QPersistentModelIndex


def problems_text(report) -> str:
    """'2 unreadable · 1 duplicate · 3 small', or 'none'."""
    parts = []
    if report.unreadable:
        parts.append(f"{len(report.unreadable)} unreadable")
    if report.duplicates:
        parts.append(f"{report.duplicates} duplicate" + ("s" if report.duplicates > 1 else ""))
    if report.small:
        parts.append(f"{report.small} small")
    return " · ".join(parts) or "none"


class _ClassDelegate(QStyledItemDelegate):
    """Count bars and example thumbnails; other columns paint as usual."""

    def __init__(self, table: ClassTable) -> None:
        super().__init__(table)
        self._table = table

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        if index.column() not in (IMAGES, EXAMPLES):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        inner = opt.rect.adjusted(PAD, PAD // 2, -PAD, -PAD // 2)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if index.column() == IMAGES:
            self._paint_count(painter, inner, index.data(CountRole) or 0, opt.palette, selected)
        else:
            self._paint_examples(painter, inner, index.data(ExamplesRole) or [])
        painter.restore()

    def _paint_count(self, painter, rect: QRect, count: int, palette, selected: bool) -> None:
        bar, track, text = bar_colours(palette, selected)
        fm = painter.fontMetrics()
        number = str(count)
        width = fm.horizontalAdvance("00000")
        painter.setPen(text)
        label = QRect(rect.left(), rect.top(), width, rect.height())
        painter.drawText(label, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, number)
        left = label.right() + fm.horizontalAdvance("  ")
        height = max(4, round(fm.height() * 0.45))
        groove = QRectF(left, rect.center().y() - height / 2, rect.right() - left, height)
        if groove.width() < 8:
            return
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(groove, height / 2, height / 2)
        fraction = count / self._table.largest() if self._table.largest() else 0.0
        if fraction > 0:
            filled = QRectF(
                groove.left(), groove.top(), max(2.0, groove.width() * fraction), height
            )
            painter.setBrush(bar)
            painter.drawRoundedRect(filled, height / 2, height / 2)

    def _paint_examples(self, painter, rect: QRect, examples: list) -> None:
        size = min(EXAMPLE_SIZE, rect.height())
        x = rect.left()
        for _path, pixmap, reason in examples:
            box = QRect(x, rect.top() + (rect.height() - size) // 2, size, size)
            if pixmap is not None:
                QIcon(pixmap).paint(painter, box, Qt.AlignmentFlag.AlignCenter)
            else:
                icon = self._table.broken if reason else self._table.waiting
                icon.paint(painter, box, Qt.AlignmentFlag.AlignCenter)
            x += size + PAD

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        fm = QFontMetrics(option.font)
        if index.column() == IMAGES:
            return QSize(fm.horizontalAdvance("00000") + fm.height() * 8, fm.height() + PAD)
        if index.column() == EXAMPLES:
            return QSize(3 * (EXAMPLE_SIZE + PAD) + PAD, EXAMPLE_SIZE + PAD)
        return super().sizeHint(option, index)


class ClassTable(QTableWidget):
    """``set_dataset(dataset)``: one row per class, from its ``ClassReport``."""

    def __init__(self, cache: ThumbnailCache | None = None, parent: QWidget | None = None):
        super().__init__(0, len(HEADERS), parent)
        self._cache = cache if cache is not None else ThumbnailCache(parent=self)
        self._largest = 0
        self._rows_of: dict[str, list[int]] = {}  # example path -> rows showing it
        self._make_icons()
        self.setHorizontalHeaderLabels(HEADERS)
        self.setItemDelegate(_ClassDelegate(self))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(EXAMPLE_SIZE + PAD)
        header = self.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(CLASS, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(IMAGES, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(PROBLEMS, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(EXAMPLES, QHeaderView.ResizeMode.ResizeToContents)
        self._cache.thumbnail_ready.connect(self._on_cache_thumbnail_ready)
        self._cache.thumbnail_failed.connect(self._on_cache_thumbnail_failed)
        self._cache.pending_cleared.connect(self._on_cache_pending_cleared)

    # ------------------------------------------------------------------ data

    def set_dataset(self, dataset) -> None:
        """Show the classes of a ``core.data.dataset.Dataset``."""
        self.clearContents()
        self.setRowCount(len(dataset.reports))
        self._rows_of = {}
        self._largest = max((report.count for report in dataset.reports), default=0)
        for row, report in enumerate(dataset.reports):
            checks = [c for c in dataset.checks if c.class_name == report.name]
            self._fill_row(row, report, checks)
        self._request([path for path in self._rows_of])

    def largest(self) -> int:
        return self._largest

    def count_of(self, row: int) -> int:
        return self.item(row, IMAGES).data(CountRole)

    def example_paths(self, row: int) -> list[Path]:
        return [Path(path) for path, _, _ in self._examples(row)]

    def examples_shown(self, row: int) -> int:
        """How many of the row's example thumbnails have arrived."""
        return sum(pixmap is not None for _, pixmap, _ in self._examples(row))

    def _examples(self, row: int) -> list:
        return self.item(row, EXAMPLES).data(ExamplesRole) or []

    def _fill_row(self, row: int, report, checks) -> None:
        name = QTableWidgetItem(report.name)
        where = f"\n{report.folder}" if report.folder else ""
        name.setToolTip(f"{report.name}{where}")
        self.setItem(row, CLASS, name)
        count = QTableWidgetItem(str(report.count))
        count.setData(CountRole, report.count)
        count.setToolTip(f"{report.count} usable images of '{report.name}'")
        self.setItem(row, IMAGES, count)
        self.setItem(row, PROBLEMS, self._problems_item(report, checks))
        examples = QTableWidgetItem()
        examples.setData(ExamplesRole, [(str(p), None, None) for p in report.examples])
        examples.setToolTip("\n".join(p.name for p in report.examples))
        self.setItem(row, EXAMPLES, examples)
        for path in report.examples:
            self._rows_of.setdefault(str(path), []).append(row)

    def _problems_item(self, report, checks) -> QTableWidgetItem:
        item = QTableWidgetItem(problems_text(report))
        lines = [c.sentence for c in checks]
        lines += [f"{path.name}: {why}" for path, why in report.unreadable[:10]]
        if len(report.unreadable) > 10:
            lines.append(f"… and {len(report.unreadable) - 10} more")
        item.setToolTip("\n".join(lines) or "Nothing wrong was found in this class.")
        level = next((lv for lv in _LEVELS if any(c.level == lv for c in checks)), None)
        if level is not None:
            item.setIcon(self.style().standardIcon(_LEVELS[level]))
        if item.text() == "none" and level is None:
            item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        return item

    def _request(self, paths: list[str]) -> None:
        for path in reversed(paths):  # newest first in the cache: the top rows first
            reason = self._cache.failure(path)
            if reason is not None:
                self._on_cache_thumbnail_failed(path, reason)
            else:
                self._cache.request(path)

    # ------------------------------------------------------------------ the cache

    def _set_example(self, path: str, pixmap: QPixmap | None, reason: str | None) -> None:
        for row in self._rows_of.get(path, ()):
            item = self.item(row, EXAMPLES)
            examples = [
                (p, pixmap, reason) if p == path else (p, x, r) for p, x, r in self._examples(row)
            ]
            item.setData(ExamplesRole, examples)  # repaints that cell

    def _on_cache_thumbnail_ready(self, path: object, image: QImage) -> None:
        if str(path) in self._rows_of:
            self._set_example(str(path), QPixmap.fromImage(image), None)

    def _on_cache_thumbnail_failed(self, path: object, reason: str) -> None:
        if str(path) in self._rows_of:
            self._set_example(str(path), None, reason)

    def _on_cache_pending_cleared(self) -> None:
        waiting = []
        for row in range(self.rowCount()):
            waiting += [p for p, x, r in self._examples(row) if x is None and r is None]
        self._request(waiting)

    # ------------------------------------------------------------------ look

    def _make_icons(self) -> None:
        ratio = self.devicePixelRatioF()
        self.waiting = placeholder_icon(self.palette(), EXAMPLE_SIZE, ratio)
        self.broken = broken_icon(self.palette(), EXAMPLE_SIZE, ratio)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.StyleChange):
            self._make_icons()
