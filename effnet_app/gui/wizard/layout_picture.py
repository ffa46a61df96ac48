"""A small drawing of the folder layout the wizard expects: one sub-folder per class.

Words like "one sub-folder of images per class" are easy to misread; a picture of
``photos/ cat/ img1.jpg … dog/ …`` with folder icons and tree lines is not. Drawn with
the palette's text colours, so it suits the light and the dark theme.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QWidget

from .curves import TRAIN_COLOUR, mix

FOLDER_COLOUR = QColor("#e3a82b")  # amber: reads as a folder on light and dark alike


class LayoutPicture(QWidget):
    """``root/`` holding a folder per class, each holding a few image files."""

    def __init__(
        self,
        parent: QWidget | None = None,
        root: str = "photos",
        classes: Sequence[str] = ("cat", "dog"),
        files: Sequence[str] = ("img1.jpg", "img2.jpg"),
    ) -> None:
        super().__init__(parent)
        self._root, self._classes, self._files = root, tuple(classes), tuple(files)
        self.setSizePolicy(self.sizePolicy().Policy.Fixed, self.sizePolicy().Policy.Fixed)
        self.setToolTip(
            f"Put the images of each class in a folder named after it, inside one folder "
            f"('{root}' here), then choose that folder."
        )
        self.setAccessibleName("Example folder layout")
        self.setAccessibleDescription(self.toolTip())

    def _rows(self) -> list[tuple[int, tuple[str, ...]]]:
        """(depth, names) per line: the root folder, each class folder, its files."""
        rows = [(0, (f"{self._root}/",))]
        for number, name in enumerate(self._classes):
            rows.append((1, (f"{name}/",)))
            files = self._files if number == 0 else self._files[:1]
            rows.append((2, (*files, "…")))
        return rows

    def _metrics(self) -> tuple[float, float, float]:
        """(line height, indent per level, icon width) from the font: scales with it."""
        fm = QFontMetrics(self.font())
        line = fm.height() * 1.35
        return line, fm.height() * 1.5, fm.height() * 1.1

    def sizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        line, indent, icon = self._metrics()
        widest = max(
            depth * indent + len(names) * (icon + 8) + fm.horizontalAdvance("  ".join(names))
            for depth, names in self._rows()
        )
        return QSize(round(widest + line), round(line * len(self._rows()) + line * 0.5))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        lines = mix(text, palette.color(QPalette.ColorRole.Window), 0.55)
        line, indent, icon = self._metrics()
        top = line * 0.25
        above = {}  # depth -> where the last row at that depth ended: the tree goes on there
        for row, (depth, names) in enumerate(self._rows()):
            y = top + row * line
            x = line * 0.3 + depth * indent
            if depth:
                start = above.get(depth - 1, y)
                self._branch(painter, lines, x, start, y + line / 2, x - indent + line * 0.3)
            box = QRectF(x, y + line * 0.2, icon, line * 0.6)
            above[depth] = box.bottom() + 1
            if depth == 2:
                self._files_row(painter, box, names, text, line)
                continue
            _folder(painter, box)
            painter.setFont(self._bold(depth == 0))
            painter.setPen(text)
            label = QRectF(box.right() + 5, y, 400, line)
            painter.drawText(label, Qt.AlignmentFlag.AlignVCenter, names[0])
        painter.end()

    def _bold(self, bold: bool):
        font = self.font()
        font.setBold(bold)
        return font

    @staticmethod
    def _branch(painter, colour: QColor, x: float, start: float, mid: float, trunk: float):
        """The tree's elbow: down the parent's trunk from ``start``, then across to ``x``."""
        painter.setPen(QPen(colour, 1.2))
        painter.drawLine(QPointF(trunk, start), QPointF(trunk, mid))
        painter.drawLine(QPointF(trunk, mid), QPointF(x - 2, mid))

    def _files_row(self, painter, box: QRectF, names, text: QColor, line: float) -> None:
        """Small picture icons, each before its file name."""
        painter.setFont(self._bold(False))
        fm = painter.fontMetrics()
        x = box.left()
        for name in names:
            if name != "…":
                _picture(painter, QRectF(x, box.top() + 1, box.width() * 0.8, box.height() - 1))
                x += box.width() * 0.8 + 4
            painter.setPen(text)
            painter.drawText(
                QRectF(x, box.top() - line * 0.2, 400, line), Qt.AlignmentFlag.AlignVCenter, name
            )
            x += fm.horizontalAdvance(name + "  ")


def _folder(painter: QPainter, box: QRectF) -> None:
    """A folder: a tab on the top left, a body under it."""
    w, h = box.width(), box.height()
    path = QPainterPath()
    path.moveTo(box.left(), box.top() + h * 0.15)
    path.lineTo(box.left() + w * 0.4, box.top() + h * 0.15)
    path.lineTo(box.left() + w * 0.5, box.top() - h * 0.05)
    path.lineTo(box.left() + w * 0.05, box.top() - h * 0.05)
    path.closeSubpath()
    painter.setPen(QPen(FOLDER_COLOUR.darker(130), 1))
    painter.setBrush(FOLDER_COLOUR.darker(112))
    painter.drawPath(path)
    painter.setBrush(FOLDER_COLOUR)
    painter.drawRoundedRect(QRectF(box.left(), box.top() + h * 0.12, w, h * 0.88), 2, 2)


def _picture(painter: QPainter, box: QRectF) -> None:
    """An image file: a blue frame with a white hill, small."""
    painter.setPen(QPen(TRAIN_COLOUR.darker(120), 1))
    painter.setBrush(mix(TRAIN_COLOUR, QColor("#ffffff"), 0.35))
    painter.drawRoundedRect(box, 1.5, 1.5)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#ffffff"))
    w, h, x, y = box.width(), box.height(), box.left(), box.bottom()
    hill = QPainterPath()
    hill.moveTo(x + w * 0.12, y - h * 0.15)
    hill.lineTo(x + w * 0.45, y - h * 0.65)
    hill.lineTo(x + w * 0.88, y - h * 0.15)
    hill.closeSubpath()
    painter.drawPath(hill)
