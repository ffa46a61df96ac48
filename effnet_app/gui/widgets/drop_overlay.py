"""The highlight shown over the window while something droppable is dragged over it."""

from __future__ import annotations

import os
from urllib.parse import unquote_to_bytes

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Local files and folders carried by a drag or the clipboard."""
    if not mime.hasUrls():
        return []
    found = (local_path(url) for url in mime.urls() if url.isLocalFile())
    return [path for path in found if path]


def local_path(url: QUrl) -> str:
    """The file a file:// URL names. On POSIX its percent-encoded bytes are decoded as
    Python decodes file names, so a name that is not UTF-8 ("caf%E9.png") still opens;
    ``toLocalFile`` would replace those bytes with U+FFFD, naming a file that is not there."""
    if os.name != "posix" or url.host():
        return url.toLocalFile()
    encoded = url.path(QUrl.ComponentFormattingOption.FullyEncoded)
    return os.fsdecode(unquote_to_bytes(encoded))


class DropOverlay(QWidget):
    """A translucent frame in the palette's highlight colour with "Drop to classify"."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def show_over(self, widget: QWidget) -> None:
        self.setGeometry(widget.rect())
        self.raise_()
        self.show()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        highlight = self.palette().highlight().color()
        fill = QColor(highlight)
        fill.setAlpha(40)
        painter.fillRect(self.rect(), fill)
        painter.setPen(QPen(highlight, 4, Qt.PenStyle.DashLine))
        painter.drawRect(self.rect().adjusted(6, 6, -6, -6))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 2)
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Drop to classify")
