"""Confidence bars: each top-k label with a bar as long as its probability.

``paint_bars`` draws one line per prediction (label, bar, percentage) with nothing but a
painter and a palette, so the preview panel can draw the same bars as the table.
``ConfidenceDelegate`` uses it for the Predictions and Confidence columns of a
``ResultsModel`` (or a proxy over one) and centres thumbnails; set it as the view's item
delegate and the other columns paint as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ..models.results_model import (
    CONFIDENCE,
    PREDICTIONS,
    THUMBNAIL,
    PredictionsRole,
    format_probability,
)

PAD_X = 6
PAD_Y = 4
LINE_GAP = 3
PERCENT_SAMPLE = "100.0%"

_Index = QModelIndex | QPersistentModelIndex


def line_height(metrics: QFontMetrics) -> int:
    return metrics.height() + LINE_GAP


def bars_height(metrics: QFontMetrics, lines: int) -> int:
    """Height that ``lines`` bars need, padding included."""
    return lines * line_height(metrics) - LINE_GAP + 2 * PAD_Y


def _mix(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    return QColor(
        round(a.red() + (b.red() - a.red()) * amount),
        round(a.green() + (b.green() - a.green()) * amount),
        round(a.blue() + (b.blue() - a.blue()) * amount),
    )


def bar_colours(palette: QPalette, selected: bool = False) -> tuple[QColor, QColor, QColor]:
    """(bar, track, text): the bar in the highlight colour, the track a faint groove.

    On a selected row the background already is the highlight colour, so the bar takes
    the highlighted-text colour instead.
    """
    group = palette.currentColorGroup()
    if selected:
        text = palette.color(group, QPalette.ColorRole.HighlightedText)
        background = palette.color(group, QPalette.ColorRole.Highlight)
        return text, _mix(background, text, 0.3), text
    text = palette.color(group, QPalette.ColorRole.Text)
    base = palette.color(group, QPalette.ColorRole.Base)
    return palette.color(group, QPalette.ColorRole.Highlight), _mix(base, text, 0.12), text


def paint_bars(
    painter: QPainter,
    rect: QRect,
    predictions: Sequence,
    palette: QPalette,
    *,
    font: QFont | None = None,
    selected: bool = False,
    show_labels: bool = True,
) -> None:
    """Draw one line per prediction in ``rect``: elided label, bar, percentage.

    ``predictions`` are objects with ``label`` and ``probability`` (0..1); the first is
    drawn in bold when labels are shown. Lines are centred vertically in ``rect``; lines
    that do not fit are left out.
    """
    if not predictions:
        return
    font = QFont(font) if font is not None else QFont(painter.font())
    metrics = QFontMetrics(font)
    step = line_height(metrics)
    count = min(len(predictions), max(1, (rect.height() + LINE_GAP) // step))
    top = rect.top() + (rect.height() - (count * step - LINE_GAP)) // 2
    colours = bar_colours(palette, selected)
    columns = _columns(rect, font, show_labels)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for number, prediction in enumerate(predictions[:count]):
        font.setBold(show_labels and number == 0)
        painter.setFont(font)
        _paint_line(painter, top + number * step, metrics.height(), prediction, columns, colours)
    painter.restore()


def _columns(rect: QRect, font: QFont, show_labels: bool) -> tuple[QRect, QRect, QRect]:
    """x-extents of label, bar and percentage, the same on every line (top line is bold)."""
    bold = QFont(font)
    bold.setBold(True)
    metrics = QFontMetrics(bold)
    percent_width = metrics.horizontalAdvance(PERCENT_SAMPLE)
    gap = metrics.horizontalAdvance("  ")
    label_width = round(rect.width() * 0.45) if show_labels else 0
    bar_left = rect.left() + label_width + (gap if show_labels else 0)
    percent_left = rect.right() + 1 - percent_width
    return (
        QRect(rect.left(), 0, label_width, 0),
        QRect(bar_left, 0, percent_left - gap - bar_left, 0),
        QRect(percent_left, 0, percent_width, 0),
    )


def _paint_line(painter, top: int, height: int, prediction, columns, colours) -> None:
    label_x, bar_x, percent_x = columns
    bar, track, text = colours
    painter.setPen(text)
    if label_x.width() > 0:
        label_rect = QRect(label_x.left(), top, label_x.width(), height)
        elided = painter.fontMetrics().elidedText(
            prediction.label, Qt.TextElideMode.ElideRight, label_x.width()
        )
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignVCenter, elided)
    percent_rect = QRect(percent_x.left(), top, percent_x.width(), height)
    align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    painter.drawText(percent_rect, align, format_probability(prediction.probability))
    if bar_x.width() >= 8:
        line = QRect(bar_x.left(), top, bar_x.width(), height)
        _paint_bar(painter, line, prediction.probability, bar, track)


def _paint_bar(painter, line: QRect, fraction: float, bar: QColor, track: QColor) -> None:
    height = max(4, round(line.height() * 0.42))
    width = line.width()
    groove = QRectF(line.left(), line.top() + (line.height() - height) / 2, width, height)
    radius = height / 2
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(track)
    painter.drawRoundedRect(groove, radius, radius)
    filled = width * min(max(float(fraction), 0.0), 1.0)
    if filled <= 0:
        return
    # A sliver of 1-2 px still shows that the label was in the running.
    filled = max(filled, 2.0)
    painter.setBrush(bar)
    fill = QRectF(groove.left(), groove.top(), filled, height)
    painter.drawRoundedRect(fill, min(radius, filled / 2), radius)


class ConfidenceDelegate(QStyledItemDelegate):
    """Bars for the Predictions (top-k) and Confidence (top-1) columns; centred thumbnails."""

    def __init__(self, parent: QObject | None = None, lines: int = 3) -> None:
        super().__init__(parent)
        self._lines = max(1, lines)

    @property
    def lines(self) -> int:
        return self._lines

    def set_lines(self, lines: int) -> None:
        """How many predictions a row makes room for (rows get taller)."""
        self._lines = max(1, lines)

    def row_height(self, font: QFont, icon_height: int = 0) -> int:
        """A uniform row height for views that set one (fast for thousands of rows)."""
        return max(bars_height(QFontMetrics(font), self._lines), icon_height + 2 * PAD_Y)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        column = index.column()
        if column not in (THUMBNAIL, PREDICTIONS, CONFIDENCE):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        icon = QIcon(opt.icon)
        opt.text = ""
        opt.icon = QIcon()  # drawn below, centred, instead of left-aligned by the style
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        inner = opt.rect.adjusted(PAD_X, PAD_Y, -PAD_X, -PAD_Y)
        if column == THUMBNAIL:
            if not icon.isNull():
                icon.paint(painter, inner, Qt.AlignmentFlag.AlignCenter)
            return
        predictions = index.data(PredictionsRole) or ()
        if column == CONFIDENCE:
            predictions = predictions[:1]
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        palette = QPalette(opt.palette)
        if not opt.state & QStyle.StateFlag.State_Enabled:
            palette.setCurrentColorGroup(QPalette.ColorGroup.Disabled)
        paint_bars(
            painter,
            inner,
            predictions,
            palette,
            font=opt.font,
            selected=selected,
            show_labels=column == PREDICTIONS,
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        column = index.column()
        metrics = QFontMetrics(option.font)
        if column == PREDICTIONS:
            width = metrics.horizontalAdvance("x") * 34
            return QSize(width, bars_height(metrics, self._lines))
        if column == CONFIDENCE:
            width = metrics.horizontalAdvance(PERCENT_SAMPLE) * 2 + 2 * PAD_X
            return QSize(width, bars_height(metrics, 1))
        if column == THUMBNAIL:
            size = option.decorationSize
            return QSize(size.width() + 2 * PAD_X, size.height() + 2 * PAD_Y)
        return super().sizeHint(option, index)
