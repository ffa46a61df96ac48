"""Loss and accuracy per epoch while a model trains, painted with a QPainter.

Two panels side by side share one legend: training in blue (solid), validation in
orange (dashed), and the loss of each batch, smoothed, as a thin line between epochs.
The x axis counts epochs; epoch 0 is the new head fitted on frozen features ("head").

The widget is updated while training runs, so painting stays cheap: the lines are kept
as ``QPainterPath``s in data units, extended when a value arrives, and drawn through a
transform with cosmetic pens; only axes and a handful of markers are placed per paint.
This module also holds the wizard widgets' shared series colours and ``mix``.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette, QPen, QTransform
from PySide6.QtWidgets import QToolTip, QWidget

# Saturated mid tones: readable on a white and on a dark grey background alike.
TRAIN_COLOUR = QColor("#2f7fd8")
VAL_COLOUR = QColor("#e8762c")
GOOD_COLOUR = QColor("#2e9d57")
BAD_COLOUR = QColor("#d64541")
BATCH_COLOUR = QColor("#7fb2ea")  # a lighter training blue: there, but behind the epochs

EMA = 0.9  # weight of the running value: smooths batch noise, still follows the trend
SERIES = ("train_loss", "val_loss", "train_acc", "val_acc", "batch_loss")
EMPTY_TEXT = "Waiting for the first epoch…"


def mix(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    amount = min(max(amount, 0.0), 1.0)
    return QColor(
        round(a.red() + (b.red() - a.red()) * amount),
        round(a.green() + (b.green() - a.green()) * amount),
        round(a.blue() + (b.blue() - a.blue()) * amount),
    )


def nice_step(span: float, ticks: int = 4) -> float:
    """A round tick spacing (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


class _Line:
    """One series: its points and the same points as a path in data units."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []
        self.path = QPainterPath()

    def add(self, x: float, y: float) -> None:
        if not math.isfinite(y):
            return  # a NaN loss would poison the path and the axis range
        if self.points:
            self.path.lineTo(x, y)
        else:
            self.path.moveTo(x, y)
        self.points.append((x, y))


class Curves(QWidget):
    """Training curves: ``add_epoch`` per ``TrainEpoch``, ``add_batch_loss`` per batch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(360, 180)
        self.setMouseTracking(True)
        self._planned = 0
        self.clear()

    # ------------------------------------------------------------------ data

    def clear(self) -> None:
        self._lines = {name: _Line() for name in SERIES}
        self._rows: list = []  # the TrainEpochs, for the hover text
        self._last_epoch: float | None = None
        self._fractions: dict[int, float] = {}  # batch in the running epoch -> its place
        self._bucket: list[float] = []  # smoothed batch losses since the last epoch row
        self._previous_bucket = 0  # batches in the epoch before: where new ones will end
        self._smoothed: float | None = None
        self.update()

    def set_epochs_planned(self, epochs: int) -> None:
        """Reserve the x axis up to ``epochs``, so it does not rescale after every epoch."""
        self._planned = max(0, int(epochs))
        self.update()

    def add_epoch(self, epoch) -> None:
        """One point on each of the four epoch lines (a ``TrainEpoch``)."""
        x = float(epoch.epoch)
        if self._last_epoch is None:
            self._smoothed = None  # the head solver's steps are not this run's batches
        else:
            self._close_bucket()
        self._lines["train_loss"].add(x, epoch.train_loss)
        self._lines["val_loss"].add(x, epoch.val_loss)
        self._lines["train_acc"].add(x, epoch.train_acc)
        self._lines["val_acc"].add(x, epoch.val_acc)
        self._rows.append(epoch)
        self._last_epoch = x
        self.update()

    def add_batch_loss(self, loss: float, fraction: float | None = None) -> None:
        """A batch's loss, smoothed; ``fraction`` (0..1] of its epoch done, when known.

        Batches before the first epoch row have no place on the x axis: only the
        smoothed value is shown under the waiting text.
        """
        if not math.isfinite(loss):
            return
        s = self._smoothed
        self._smoothed = loss if s is None else EMA * s + (1 - EMA) * loss
        if self._last_epoch is not None:
            self._bucket.append(self._smoothed)
            if fraction is not None:
                self._fractions[len(self._bucket) - 1] = min(max(fraction, 0.0), 1.0)
        self.update()

    def _bucket_points(self) -> list[tuple[float, float]]:
        """Where the batches since the last epoch row sit between it and the next."""
        count = len(self._bucket)
        expected = max(count, self._previous_bucket)
        start = self._last_epoch or 0.0
        return [
            (start + self._fractions.get(i, (i + 1) / expected), value)
            for i, value in enumerate(self._bucket)
        ]

    def _close_bucket(self) -> None:
        points = self._bucket_points()
        for x, y in points:
            self._lines["batch_loss"].add(x, y)
        self._previous_bucket = len(self._bucket) or self._previous_bucket
        self._bucket = []
        self._fractions = {}

    def epoch_count(self) -> int:
        return len(self._rows)

    def series(self) -> dict[str, list[tuple[float, float]]]:
        """Every line's points as drawn, (x in epochs, y); batches of the running epoch too."""
        out = {name: list(line.points) for name, line in self._lines.items()}
        out["batch_loss"] += self._bucket_points()
        return out

    # ------------------------------------------------------------------ geometry

    def sizeHint(self) -> QSize:
        return QSize(640, 260)

    def _x_range(self) -> tuple[float, float]:
        last = self._last_epoch or 0.0
        if self._bucket:
            last += 1  # the running epoch's batches reach towards the next point
        return 0.0, max(1.0, last, float(self._planned))

    def _y_range(self, loss: bool) -> tuple[float, float]:
        names = ("train_loss", "val_loss", "batch_loss") if loss else ("train_acc", "val_acc")
        values = [y for name in names for _, y in self._lines[name].points]
        if loss:
            values += self._bucket
            top = max(values, default=1.0)
            step = nice_step(top)
            return 0.0, max(step, math.ceil(top / step) * step)
        low = min(values, default=0.0)
        return max(0.0, math.floor(low * 10 - 0.5) / 10), 1.0

    def _panels(self) -> tuple[QRectF, QRectF, float]:
        """The two plot areas (inside the axes) and the legend's baseline."""
        fm = QFontMetrics(self.font())
        line = fm.height()
        legend = line * 1.6
        left = fm.horizontalAdvance("100%") + line * 0.8
        gap = line * 1.6
        width = (self.width() - gap) / 2
        top = legend + line * 1.4  # panel title above each plot
        height = self.height() - top - line * 1.5
        rects = tuple(
            QRectF(x + left, top, max(10.0, width - left - line), max(10.0, height))
            for x in (0.0, width + gap)
        )
        return rects[0], rects[1], line * 1.1

    @staticmethod
    def _transform(rect: QRectF, xs: tuple[float, float], ys: tuple[float, float]) -> QTransform:
        sx = rect.width() / (xs[1] - xs[0])
        sy = rect.height() / (ys[1] - ys[0])
        return QTransform(sx, 0, 0, -sy, rect.left() - xs[0] * sx, rect.bottom() + ys[0] * sy)

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        loss_rect, acc_rect, legend_y = self._panels()
        self._paint_legend(painter, legend_y)
        xs = self._x_range()
        for rect, loss in ((loss_rect, True), (acc_rect, False)):
            ys = self._y_range(loss)
            self._paint_axes(painter, rect, xs, ys, loss)
            if self.epoch_count():
                self._paint_lines(painter, rect, self._transform(rect, xs, ys), loss)
        if not self.epoch_count():
            self._paint_waiting(painter)
        painter.end()

    def _text_colours(self) -> tuple[QColor, QColor, QColor]:
        """(text, faint text for ticks, grid lines) from the palette."""
        p = self.palette()
        text = p.color(QPalette.ColorRole.WindowText)
        base = p.color(QPalette.ColorRole.Base)
        return text, mix(text, base, 0.35), mix(base, text, 0.12)

    def _paint_legend(self, painter: QPainter, baseline: float) -> None:
        text, _, _ = self._text_colours()
        fm = painter.fontMetrics()
        solid, dashed = Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine
        entries = (
            ("training", TRAIN_COLOUR, solid, 2.0),
            ("validation", VAL_COLOUR, dashed, 2.0),
            ("each batch (smoothed)", self._batch_colour(), solid, 1.0),
        )
        x, sample = float(fm.height()) * 0.4, fm.height() * 1.8
        mid = baseline - fm.ascent() / 2 + fm.descent() / 2
        for label, colour, style, width in entries:
            pen = QPen(colour, width, style)
            painter.setPen(pen)
            painter.drawLine(QPointF(x, mid), QPointF(x + sample, mid))
            painter.setPen(text)
            painter.drawText(QPointF(x + sample + fm.height() * 0.4, baseline), label)
            x += sample + fm.horizontalAdvance(label) + fm.height() * 1.6

    def _base(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.Base)

    def _batch_colour(self) -> QColor:
        return BATCH_COLOUR

    def _paint_axes(self, painter, rect: QRectF, xs, ys, loss: bool) -> None:
        text, faint, grid = self._text_colours()
        fm = painter.fontMetrics()
        painter.fillRect(rect, self._base())
        painter.setPen(text)
        title = (
            "Loss per epoch (lower is better)" if loss else "Accuracy per epoch (higher is better)"
        )
        painter.drawText(QPointF(rect.left(), rect.top() - fm.descent() - 4), title)
        if self.epoch_count():  # empty: no numbers that mean nothing yet
            transform = self._transform(rect, xs, ys)
            self._paint_y_ticks(painter, rect, xs, ys, transform, loss)
            self._paint_x_ticks(painter, rect, xs, transform, faint)
        painter.setPen(QPen(faint, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)

    def _paint_y_ticks(self, painter, rect: QRectF, xs, ys, transform, loss: bool) -> None:
        _, faint, grid = self._text_colours()
        fm = painter.fontMetrics()
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        step = nice_step(ys[1] - ys[0])
        value = ys[0]
        while value <= ys[1] + step * 1e-6:
            y = transform.map(QPointF(xs[0], value)).y()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            label = f"{value:.2g}" if loss else f"{value * 100:.0f}%"
            painter.setPen(faint)
            box = QRectF(0, y - fm.height() / 2, rect.left() - fm.height() * 0.3, fm.height())
            painter.drawText(box, right, label)
            value += step

    def _paint_x_ticks(self, painter, rect: QRectF, xs, transform, colour: QColor) -> None:
        fm = painter.fontMetrics()
        room = max(1, int(rect.width() // (fm.horizontalAdvance("00") * 2.4)))
        step = max(1, math.ceil(nice_step(xs[1] - xs[0], min(room, 10))))
        painter.setPen(colour)
        for epoch in range(int(xs[0]), int(xs[1]) + 1, step):
            x = transform.map(QPointF(epoch, 0)).x()
            label = "head" if epoch == 0 else str(epoch)
            box = QRectF(x - fm.height() * 2, rect.bottom() + 3, fm.height() * 4, fm.height())
            painter.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, label)

    def _paint_lines(self, painter: QPainter, rect: QRectF, transform: QTransform, loss: bool):
        """Paths through the data-to-pixels transform (cosmetic pens), then the markers."""
        ratio = self.devicePixelRatioF()  # cosmetic widths are in device pixels
        painter.save()
        painter.setClipRect(rect.adjusted(-4, -4, 4, 4))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setTransform(transform, True)
        if loss:
            painter.setPen(self._pen(self._batch_colour(), 1.0 * ratio))
            painter.drawPath(self._lines["batch_loss"].path)  # finished epochs, as kept
            running = QPainterPath()  # the running epoch: a few points, built anew
            done = self._lines["batch_loss"].points
            for x, y in done[-1:] + self._bucket_points():
                (running.lineTo if running.elementCount() else running.moveTo)(x, y)
            painter.drawPath(running)
        names = ("train_loss", "val_loss") if loss else ("train_acc", "val_acc")
        colours = (TRAIN_COLOUR, VAL_COLOUR)
        for name, colour in zip(names, colours, strict=True):
            style = Qt.PenStyle.SolidLine if name.startswith("train") else Qt.PenStyle.DashLine
            painter.setPen(self._pen(colour, 2.0 * ratio, style))
            painter.drawPath(self._lines[name].path)
        painter.resetTransform()
        painter.setPen(Qt.PenStyle.NoPen)
        for name, colour in zip(names, colours, strict=True):
            painter.setBrush(colour)
            for x, y in self._lines[name].points:
                painter.drawEllipse(transform.map(QPointF(x, y)), 3.0, 3.0)
        painter.restore()

    @staticmethod
    def _pen(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
        pen = QPen(colour, width, style)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        pen.setCosmetic(True)  # widths in pixels whatever the data-to-pixels scale
        return pen

    def _paint_waiting(self, painter: QPainter) -> None:
        text, faint, _ = self._text_colours()
        message = EMPTY_TEXT
        if self._smoothed is not None:
            message += f"\nloss so far {self._smoothed:.3g}"
        fm = painter.fontMetrics()
        box = fm.boundingRect(self.rect(), Qt.AlignmentFlag.AlignCenter, message).toRectF()
        box.adjust(-fm.height(), -fm.height() * 0.6, fm.height(), fm.height() * 0.6)
        painter.setPen(QPen(faint, 1))
        painter.setBrush(self.palette().color(QPalette.ColorRole.Window))
        painter.drawRoundedRect(box, fm.height() * 0.4, fm.height() * 0.4)
        painter.setPen(text)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, message)

    # ------------------------------------------------------------------ hover

    def mouseMoveEvent(self, event) -> None:
        text = self._hover_text(event.position())
        if text:
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def _hover_text(self, pos: QPointF) -> str:
        """The values of the epoch under the mouse, in words."""
        if not self.epoch_count():
            return ""
        xs = self._x_range()
        for rect in self._panels()[:2]:
            if rect.contains(pos):
                x = xs[0] + (pos.x() - rect.left()) / rect.width() * (xs[1] - xs[0])
                row = min(range(self.epoch_count()), key=lambda i: self._dist(i, x))
                return self._describe(row)
        return ""

    def _dist(self, row: int, x: float) -> float:
        return abs(self._rows[row].epoch - x)

    def _describe(self, row: int) -> str:
        e = self._rows[row]
        title = "The new head (before fine-tuning)" if e.epoch == 0 else f"Epoch {e.epoch}"
        return (
            f"{title}\nloss: training {e.train_loss:.3f}, validation {e.val_loss:.3f}\n"
            f"accuracy: training {e.train_acc:.1%}, validation {e.val_acc:.1%}"
        )
