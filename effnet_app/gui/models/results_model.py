"""The prediction table: one row per file, and the proxy that sorts and filters it.

Rows are ``ImageResult`` objects from ``effnet_app.core.runtime.classifier`` (frozen dataclasses:
``path``, ``predictions``, ``problem``, ``top1``). They are only read here, through those
attributes, so this module never imports the core's inference module at run time: the
window must show before anything heavy is loaded.

Thumbnails are fetched lazily: the first time a visible row's thumbnail is asked for
(``DecorationRole``), the model emits ``thumbnail_requested(path)``, once per file;
whoever owns the cache answers with ``set_thumbnail``. See ``connect_thumbnails``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPalette, QPixmap

from ..display import display_name, display_path
from .base import FlatTableModel

if TYPE_CHECKING:
    from ...core.runtime.classifier import ImageResult

THUMBNAIL, FILE, PREDICTIONS, CONFIDENCE, PROBLEM = range(5)
HEADERS = ("", "File", "Predictions", "Confidence", "Problem")

ResultRole = Qt.ItemDataRole.UserRole + 1  # the row's ImageResult
SortRole = Qt.ItemDataRole.UserRole + 2  # a key that sorts the column sensibly
PredictionsRole = Qt.ItemDataRole.UserRole + 3  # the top-k predictions shown

# Decoded thumbnails kept as icons by the model; rows scrolled far away are dropped and
# asked for again (the ThumbnailCache answers those from memory).
ICON_CAPACITY = 1000

_Index = QModelIndex | QPersistentModelIndex


def format_probability(probability: float) -> str:
    """0.873 -> "87.3%"; tiny values say so instead of a misleading "0.0%"."""
    if 0 < probability < 0.0005:
        return "<0.1%"
    return f"{probability * 100:.1f}%"


def problem_colour(palette: QPalette) -> QColor:
    """Red mixed with the text colour: dark red on light themes, soft red on dark ones."""
    text = palette.color(QPalette.ColorRole.Text)
    red = QColor(220, 50, 50)
    return QColor(
        (text.red() + red.red()) // 2,
        (text.green() + red.green()) // 2,
        (text.blue() + red.blue()) // 2,
    )


class ResultsModel(FlatTableModel):
    """Results in arrival order; appending a batch of thousands is one insert."""

    HEADERS = HEADERS

    thumbnail_requested = Signal(object)  # str path: a visible row needs its thumbnail

    def __init__(self, parent: QObject | None = None, top_k_shown: int = 3) -> None:
        super().__init__(parent)
        self._results: list[ImageResult] = []
        self._rows: dict[str, list[int]] = {}
        self._images: OrderedDict[str, QImage] = OrderedDict()
        self._icons: dict[str, QIcon] = {}
        self._asked: set[str] = set()  # thumbnails requested and not stored since
        self._top_k = max(1, top_k_shown)

    # ------------------------------------------------------------------ contents

    def append(self, results: Sequence[ImageResult]) -> None:
        if not results:
            return
        first = len(self._results)
        self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
        for row, result in enumerate(results, first):
            self._results.append(result)
            self._rows.setdefault(str(result.path), []).append(row)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._results.clear()
        self._rows.clear()
        self._images.clear()
        self._icons.clear()
        self._asked.clear()
        self.endResetModel()

    def relocate(self, moves: Sequence[tuple[Path, Path]]) -> int:
        """Point rows at the files' new places after they were moved; returns rows changed."""
        import dataclasses

        changed = 0
        for old, new in moves:
            rows = self._rows.pop(str(old), [])
            for row in rows:
                self._results[row] = dataclasses.replace(self._results[row], path=Path(new))
                self._rows.setdefault(str(new), []).append(row)
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))
                changed += 1
            self._images.pop(str(old), None)
            self._icons.pop(str(old), None)
            self._asked.discard(str(old))
        return changed

    def result(self, row: int) -> ImageResult:
        return self._results[row]

    def results(self) -> list[ImageResult]:
        return list(self._results)

    def row_of(self, path: str | Path) -> int | None:
        rows = self._rows.get(str(path))
        return rows[0] if rows else None

    @property
    def top_k_shown(self) -> int:
        return self._top_k

    def set_top_k_shown(self, k: int) -> None:
        """How many predictions the Predictions column and its tooltip show."""
        k = max(1, k)
        if k == self._top_k:
            return
        self._top_k = k
        if self._results:
            last = self.index(len(self._results) - 1, PREDICTIONS)
            self.dataChanged.emit(self.index(0, PREDICTIONS), last)

    # ------------------------------------------------------------------ thumbnails

    def set_thumbnail(self, path: str, image: QImage) -> None:
        """Store a decoded thumbnail; only that file's thumbnail cells repaint."""
        rows = self._rows.get(path)
        if not rows or image.isNull():
            return
        self._images[path] = image
        self._images.move_to_end(path)
        self._icons.pop(path, None)
        while len(self._images) > ICON_CAPACITY:
            old, _ = self._images.popitem(last=False)
            self._icons.pop(old, None)
            self._asked.discard(old)  # asked for again if it scrolls back into view
        for row in rows:
            cell = self.index(row, THUMBNAIL)
            self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DecorationRole])

    def forget_thumbnail_requests(self) -> None:
        """Ask again for thumbnails not received (the cache dropped its queue)."""
        self._asked.clear()

    def has_thumbnail(self, path: str | Path) -> bool:
        return str(path) in self._images

    def _icon(self, result: ImageResult) -> QIcon | None:
        key = str(result.path)
        icon = self._icons.get(key)
        if icon is not None:
            return icon
        image = self._images.get(key)
        if image is None:
            if result.problem is None and key not in self._asked:
                self._asked.add(key)
                self.thumbnail_requested.emit(key)
            return None
        # QPixmap must be made on the GUI thread, which is where data() runs.
        icon = self._icons[key] = QIcon(QPixmap.fromImage(image))
        return icon

    # ------------------------------------------------------------------ Qt model API

    def row_count(self) -> int:
        return len(self._results)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._results):
            return None
        result = self._results[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(result, column)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(result) if column == THUMBNAIL else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(result, column, self._top_k)
        if role == ResultRole:
            return result
        if role == PredictionsRole:
            return result.predictions[: self._top_k]
        if role == SortRole:  # the thumbnail column sorts into arrival order
            return index.row() if column == THUMBNAIL else sort_key(result, column)
        if role == Qt.ItemDataRole.ForegroundRole and result.problem is not None:
            return problem_colour(QGuiApplication.palette())
        if role == Qt.ItemDataRole.TextAlignmentRole and column == CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _display(result: ImageResult, column: int) -> str | None:
    top1 = result.top1
    if column == FILE:
        return display_name(result.path)
    if column == PREDICTIONS:
        return top1.label if top1 else ""
    if column == CONFIDENCE:
        return format_probability(top1.probability) if top1 else ""
    if column == PROBLEM:
        return result.problem or ""
    return None


def _tooltip(result: ImageResult, column: int, top_k: int) -> str | None:
    if column in (THUMBNAIL, FILE):
        return display_path(result.path)
    if result.problem is not None:
        return f"{display_name(result.path)}: {result.problem}"
    if column in (PREDICTIONS, CONFIDENCE):
        shown = result.predictions[:top_k]
        return "\n".join(f"{format_probability(p.probability)}  {p.label}" for p in shown)
    return None


def sort_key(result: ImageResult, column: int) -> str | float:
    """What a column sorts by: names and labels ignoring case, confidence as a number."""
    top1 = result.top1
    if column == FILE:
        return result.path.name.casefold()
    if column == PREDICTIONS:
        return top1.label.casefold() if top1 else ""
    if column == CONFIDENCE:
        return top1.probability if top1 else -1.0  # problems sort below any confidence
    return result.problem or ""


class ResultsFilterProxy(QSortFilterProxyModel):
    """Sorts by ``SortRole`` and filters by label, confidence and problems.

    The label filter matches, ignoring case, a substring of the top-1 label or of the file
    name: what the user sees first in a row. Lower-ranked labels are left out on purpose,
    or typing "cat" would also list every photo where a cat came fifth. All active filters
    must pass; a confidence threshold hides problem rows, which have no confidence.
    """

    counts_changed = Signal(int, int)  # rows shown, rows in total

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SortRole)
        self.setDynamicSortFilter(True)
        self._label = ""
        self._below: float | None = None
        self._problems_only = False
        self._last_counts: tuple[int, int] | None = None
        self._quiet = False  # while refiltering: one counts_changed at the end, not per step
        for signal in (self.rowsInserted, self.rowsRemoved, self.modelReset, self.layoutChanged):
            signal.connect(self._emit_counts)

    def set_label_filter(self, text: str) -> None:
        self._refilter("_label", text.strip().casefold())

    def set_confidence_below(self, threshold: float | None) -> None:
        self._refilter("_below", threshold)

    def set_problems_only(self, on: bool) -> None:
        self._refilter("_problems_only", bool(on))

    def counts(self) -> tuple[int, int]:
        source = self.sourceModel()
        return self.rowCount(), source.rowCount() if source is not None else 0

    def _refilter(self, attribute: str, value) -> None:
        if getattr(self, attribute) == value:
            return
        self._quiet = True
        try:
            self._apply(attribute, value)
        finally:
            self._quiet = False
        self._emit_counts()

    def _apply(self, attribute: str, value) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated
            self.beginFilterChange()
            setattr(self, attribute, value)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            setattr(self, attribute, value)
            self.invalidateRowsFilter()

    def _emit_counts(self, *_) -> None:
        counts = self.counts()
        if not self._quiet and counts != self._last_counts:
            self._last_counts = counts
            self.counts_changed.emit(*counts)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        result = self.sourceModel().index(source_row, 0, source_parent).data(ResultRole)
        if result is None:
            return False
        if self._problems_only and result.problem is None:
            return False
        top1 = result.top1
        if self._below is not None and (top1 is None or top1.probability >= self._below):
            return False
        if self._label:
            texts = (display_name(result.path), top1.label if top1 else "")
            return any(self._label in text.casefold() for text in texts)
        return True


def connect_thumbnails(model: ResultsModel, cache) -> None:
    """Wire a ResultsModel to a ThumbnailCache: rows ask as they are painted, cache answers.

    Asking from ``data()`` rather than on insert means a folder of 10,000 photos decodes
    only the thumbnails someone scrolls to. The request is queued so that a thumbnail
    already in memory never arrives in the middle of a paint.
    """
    model.thumbnail_requested.connect(cache.request, Qt.ConnectionType.QueuedConnection)
    cache.thumbnail_ready.connect(model.set_thumbnail)
    cache.pending_cleared.connect(model.forget_thumbnail_requests)
