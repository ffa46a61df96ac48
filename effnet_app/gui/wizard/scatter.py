"""Models compared on the user's own images: accuracy (up) against speed (left).

Each base model tried becomes one labelled dot; a click on a dot emits ``point_chosen``
with its key, so the wizard can pick that model. Milliseconds per image go on a log
axis when they span more than ten times, as B0 to B7 do. Positions are worked out when a
point arrives or the widget is resized, never while painting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QWidget

from .curves import TRAIN_COLOUR, VAL_COLOUR, mix, nice_step

EMPTY_TEXT = (
    "Each model shows up here once it has been tried on your images.\n"
    "Higher is more accurate; further left is faster."
)
RADIUS = 5.0  # logical pixels; the click target is twice as wide


@dataclass(frozen=True)
class PlotPoint:
    key: str
    label: str
    ms: float  # per image
    accuracy: float  # 0..1


class ComparePlot(QWidget):
    """A scatter of accuracy against milliseconds per image; click a dot to choose it."""

    point_chosen = Signal(str)  # key

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setMouseTracking(True)
        self._points: list[PlotPoint] = []
        self._chosen: str | None = None
        self._hover: str | None = None
        self._layout: dict | None = None  # computed lazily for the current size

    # ------------------------------------------------------------------ data

    def add_point(self, key: str, label: str, ms: float, accuracy: float) -> None:
        """One model; a key already shown is replaced (a model tried again)."""
        self._points = [p for p in self._points if p.key != key]
        self._points.append(PlotPoint(key, label, float(ms), float(accuracy)))
        self._invalidate()

    def clear(self) -> None:
        self._points = []
        self._chosen = self._hover = None
        self._invalidate()

    def points(self) -> list[PlotPoint]:
        return list(self._points)

    def set_chosen(self, key: str | None) -> None:
        """Ring the dot of the model in use (without emitting)."""
        self._chosen = key
        self.update()

    def chosen(self) -> str | None:
        return self._chosen

    def point_position(self, key: str) -> QPointF:
        """Where ``key``'s dot is in widget coordinates (for tests and tooltips)."""
        return QPointF(self._geometry()["positions"][key])

    def key_at(self, pos: QPointF) -> str | None:
        """The dot nearest ``pos`` within a click's reach, if any."""
        positions = self._geometry()["positions"]
        reach = RADIUS * 2.4
        best = min(positions.items(), key=lambda kv: _distance(kv[1], pos), default=None)
        if best is None or _distance(best[1], pos) > reach:
            return None
        return best[0]

    # ------------------------------------------------------------------ geometry

    def sizeHint(self) -> QSize:
        return QSize(520, 300)

    def resizeEvent(self, event) -> None:
        self._layout = None
        super().resizeEvent(event)

    def changeEvent(self, event) -> None:
        self._layout = None  # a font change moves the axes
        super().changeEvent(event)

    def _invalidate(self) -> None:
        self._layout = None
        self.update()

    def _geometry(self) -> dict:
        if self._layout is None:
            self._layout = self._compute_layout()
        return self._layout

    def _compute_layout(self) -> dict:
        fm = QFontMetrics(self.font())
        line = fm.height()
        left = fm.horizontalAdvance("100%") + line * 2.0
        plot = QRectF(left, line * 1.0, self.width() - left - line * 1.2, 0)
        plot.setBottom(self.height() - line * 3.0)
        xs, log = self._x_range()
        ys = self._y_range()
        positions = {p.key: self._map(plot, xs, ys, log, p.ms, p.accuracy) for p in self._points}
        labels = _place_labels(self._points, positions, plot, fm)
        return dict(plot=plot, xs=xs, ys=ys, log=log, positions=positions, labels=labels)

    def _x_range(self) -> tuple[tuple[float, float], bool]:
        values = [p.ms for p in self._points if p.ms > 0] or [1.0]
        low, high = min(values), max(values)
        if high / low > 10:
            return (math.log10(low) - 0.15, math.log10(high) + 0.15), True
        pad = max((high - low) * 0.12, high * 0.1, 0.5)
        return (max(0.0, low - pad), high + pad), False

    def _y_range(self) -> tuple[float, float]:
        values = [p.accuracy for p in self._points] or [0.5, 1.0]
        low = math.floor(min(values) * 20 - 0.5) / 20  # a 5 % margin, on a round value
        high = min(1.0, math.ceil(max(values) * 20 + 0.5) / 20)
        return max(0.0, min(low, high - 0.1)), high

    @staticmethod
    def _map(plot: QRectF, xs, ys, log: bool, ms: float, acc: float) -> QPointF:
        x = math.log10(max(ms, 1e-6)) if log else ms
        fx = (x - xs[0]) / (xs[1] - xs[0])
        fy = (acc - ys[0]) / (ys[1] - ys[0])
        return QPointF(plot.left() + fx * plot.width(), plot.bottom() - fy * plot.height())

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        geometry = self._geometry()
        self._paint_axes(painter, geometry)
        if self._points:
            self._paint_points(painter, geometry)
        else:
            painter.setPen(self._colours()[1])
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(geometry["plot"].adjusted(8, 8, -8, -8), flags, EMPTY_TEXT)
        painter.end()

    def _colours(self) -> tuple[QColor, QColor, QColor, QColor]:
        """(text, faint text, grid, plot background)."""
        p = self.palette()
        text, base = p.color(QPalette.ColorRole.WindowText), p.color(QPalette.ColorRole.Base)
        return text, mix(text, base, 0.35), mix(base, text, 0.12), base

    def _paint_axes(self, painter: QPainter, g: dict) -> None:
        text, faint, grid, base = self._colours()
        plot, fm = g["plot"], painter.fontMetrics()
        painter.fillRect(plot, base)
        if self._points:  # empty: no numbers that mean nothing yet
            self._paint_ticks(painter, g, faint, grid)
        painter.setPen(QPen(faint, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(plot)
        painter.setPen(text)
        below = QRectF(plot.left(), plot.bottom() + fm.height(), plot.width(), fm.height() * 1.6)
        scale = ", log scale" if g["log"] else ""
        painter.drawText(
            below, Qt.AlignmentFlag.AlignCenter, f"milliseconds per image (← faster){scale}"
        )
        painter.save()
        painter.translate(fm.height() * 0.2, plot.center().y())
        painter.rotate(-90)
        side = QRectF(-plot.height() / 2, 0, plot.height(), fm.height() * 1.2)
        painter.drawText(side, Qt.AlignmentFlag.AlignCenter, "accuracy on your images")
        painter.restore()

    def _paint_ticks(self, painter: QPainter, g: dict, faint: QColor, grid: QColor) -> None:
        plot, fm = g["plot"], painter.fontMetrics()
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for value in _ticks(*g["ys"]):
            y = self._map(plot, g["xs"], g["ys"], False, 1.0, value).y()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(faint)
            box = QRectF(0, y - fm.height() / 2, plot.left() - fm.height() * 0.3, fm.height())
            painter.drawText(box, right, f"{value * 100:.0f}%")
        for value in _x_ticks(*g["xs"], g["log"]):
            x = self._map(plot, g["xs"], g["ys"], g["log"], value, 0.0).x()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(faint)
            box = QRectF(x - fm.height() * 3, plot.bottom() + 2, fm.height() * 6, fm.height())
            painter.drawText(box, Qt.AlignmentFlag.AlignHCenter, f"{value:g}")

    def _paint_points(self, painter: QPainter, g: dict) -> None:
        text, _, _, base = self._colours()
        for point in self._points:
            pos = g["positions"][point.key]
            marked = point.key in (self._chosen, self._hover)
            colour = VAL_COLOUR if point.key == self._chosen else TRAIN_COLOUR
            if marked:
                painter.setPen(QPen(colour, 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawEllipse(pos, RADIUS * 1.9, RADIUS * 1.9)
            painter.setPen(QPen(base, 1.5))
            painter.setBrush(colour)
            painter.drawEllipse(pos, RADIUS, RADIUS)
            font = painter.font()
            font.setBold(point.key == self._chosen)
            painter.setFont(font)
            painter.setPen(text)
            rect, flags = g["labels"][point.key]
            painter.drawText(rect, flags, _label(point))

    # ------------------------------------------------------------------ mouse

    def mouseMoveEvent(self, event) -> None:
        key = self.key_at(event.position())
        if key != self._hover:
            self._hover = key
            shape = Qt.CursorShape.PointingHandCursor if key else Qt.CursorShape.ArrowCursor
            self.setCursor(shape)
            self.setToolTip(self._tooltip(key))
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:
        key = self.key_at(event.position())
        if key is not None and event.button() == Qt.MouseButton.LeftButton:
            self._chosen = key
            self.update()
            self.point_chosen.emit(key)
            return
        super().mousePressEvent(event)

    def _tooltip(self, key: str | None) -> str:
        point = next((p for p in self._points if p.key == key), None)
        if point is None:
            return ""
        return (
            f"{point.label}: {point.accuracy:.1%} right on your validation images, "
            f"{point.ms:.3g} ms per image.\nClick to use this model."
        )


def _distance(a: QPointF, b: QPointF) -> float:
    return math.hypot(a.x() - b.x(), a.y() - b.y())


def _label(point: PlotPoint) -> str:
    return f"{point.label}  {point.accuracy:.0%}"


def _ticks(low: float, high: float) -> list[float]:
    step = nice_step(high - low)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _x_ticks(low: float, high: float, log: bool) -> list[float]:
    """Tick values in milliseconds: 1-2-5 steps on a log axis, round steps otherwise."""
    if not log:
        return [value for value in _ticks(low, high) if value >= 0]
    out = []
    for power in range(math.floor(low), math.ceil(high) + 1):
        for factor in (1, 2, 5):
            value = factor * 10**power
            if low <= math.log10(value) <= high:
                out.append(round(value, 6))
    return out


def _place_labels(points, positions, plot: QRectF, fm: QFontMetrics) -> dict:
    """A spot for each label beside its dot (right, left, above, below or a corner): the
    one that covers the least of the dots and the labels already placed, inside the plot."""
    gap, dot = RADIUS + 4, RADIUS + 2
    taken = [QRectF(p.x() - dot, p.y() - dot, 2 * dot, 2 * dot) for p in positions.values()]
    out = {}
    for point in points:
        pos = positions[point.key]
        w, h = fm.horizontalAdvance(_label(point)) + 4, fm.height()
        rects = [
            QRectF(pos.x() + gap, pos.y() - h / 2, w, h),
            QRectF(pos.x() - gap - w, pos.y() - h / 2, w, h),
            QRectF(pos.x() - w / 2, pos.y() - gap - h, w, h),
            QRectF(pos.x() - w / 2, pos.y() + gap, w, h),
            QRectF(pos.x() + gap * 0.6, pos.y() - gap * 0.6 - h, w, h),
            QRectF(pos.x() + gap * 0.6, pos.y() + gap * 0.6, w, h),
        ]
        best = min(rects, key=lambda r: (not plot.contains(r), _covered(r, taken)))
        taken.append(best)
        flags = (
            Qt.AlignmentFlag.AlignRight if best.right() < pos.x() else Qt.AlignmentFlag.AlignLeft
        )
        out[point.key] = (best, flags | Qt.AlignmentFlag.AlignVCenter)
    return out


def _covered(rect: QRectF, taken: list[QRectF]) -> float:
    """The area of ``rect`` that ``taken`` rectangles cover (overlaps counted twice)."""
    total = 0.0
    for other in taken:
        both = rect.intersected(other)
        if not both.isEmpty():
            total += both.width() * both.height()
    return total
