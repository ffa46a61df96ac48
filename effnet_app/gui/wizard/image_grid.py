"""A grid of thumbnails with captions: the images behind a confusion cell or a warning.

Thumbnails come from the shared ``ThumbnailCache`` off the GUI thread; until one arrives
its tile shows a quiet placeholder, and a file that cannot be read shows a broken-image
icon with the reason as its tooltip. Double-click opens the file in the system viewer.
``placeholder_icon`` and ``broken_icon`` are shared with the class table.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QUrl
from PySide6.QtGui import (
    QDesktopServices,
    QIcon,
    QImage,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from ..thumbnails import THUMBNAIL_SIZE, ThumbnailCache
from .curves import BAD_COLOUR, mix

PathRole = Qt.ItemDataRole.UserRole + 1  # the file's Path
StateRole = Qt.ItemDataRole.UserRole + 2  # "waiting" | "ready" | "failed"
ICON_SIZE = 96  # logical pixels: big enough to tell a cat from a dog, 6+ per row at 800 px


def _canvas(size: int, ratio: float) -> tuple[QPixmap, QPainter, QRectF]:
    pixmap = QPixmap(round(size * ratio), round(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    return pixmap, painter, QRectF(1.5, 1.5, size - 3, size - 3)


def _picture_glyph(painter: QPainter, box: QRectF, colour) -> None:
    """A tiny landscape (sun and two hills) inside ``box``: the usual 'image' sign."""
    painter.setPen(QPen(colour, max(1.0, box.width() / 14)))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(box, box.width() / 10, box.width() / 10)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    w, h, x, y = box.width(), box.height(), box.left(), box.top()
    painter.drawEllipse(QPointF(x + w * 0.7, y + h * 0.32), w * 0.09, w * 0.09)
    hills = [(0.1, 0.85), (0.38, 0.45), (0.6, 0.7), (0.72, 0.58), (0.9, 0.85)]
    painter.drawPolygon(QPolygonF([QPointF(x + a * w, y + b * h) for a, b in hills]))


def placeholder_icon(palette: QPalette, size: int = ICON_SIZE, ratio: float = 1.0) -> QIcon:
    """A faint tile with a picture sign: 'a thumbnail is on its way'."""
    base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
    pixmap, painter, rect = _canvas(size, ratio)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(mix(base, text, 0.07))
    painter.drawRoundedRect(rect, size / 12, size / 12)
    glyph = QRectF(0, 0, size * 0.36, size * 0.3)
    glyph.moveCenter(rect.center())
    _picture_glyph(painter, glyph, mix(base, text, 0.25))
    painter.end()
    return QIcon(pixmap)


def broken_icon(palette: QPalette, size: int = ICON_SIZE, ratio: float = 1.0) -> QIcon:
    """A dashed tile, the picture sign struck through in red: 'this file has no image'."""
    base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
    pixmap, painter, rect = _canvas(size, ratio)
    painter.setPen(QPen(mix(base, BAD_COLOUR, 0.7), max(1.0, size / 48), Qt.PenStyle.DashLine))
    painter.setBrush(mix(base, BAD_COLOUR, 0.06))
    painter.drawRoundedRect(rect, size / 12, size / 12)
    glyph = QRectF(0, 0, size * 0.4, size * 0.33)
    glyph.moveCenter(rect.center())
    _picture_glyph(painter, glyph, mix(base, text, 0.45))
    pen = QPen(BAD_COLOUR, max(2.0, size / 24))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    inset = glyph.adjusted(-size * 0.04, -size * 0.06, size * 0.04, size * 0.06)
    painter.drawLine(inset.bottomLeft(), inset.topRight())
    painter.end()
    return QIcon(pixmap)


def square_pixmap(image: QImage, size: int, ratio: float = 1.0) -> QPixmap:
    """``image`` fitted and centred in a transparent square: captions line up in a row."""
    pixmap, painter, _ = _canvas(size, ratio)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    scaled = QSize(image.width(), image.height()).scaled(
        QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio
    )
    target = QRectF(
        (size - scaled.width()) / 2, (size - scaled.height()) / 2, scaled.width(), scaled.height()
    )
    painter.drawImage(target, image)
    painter.end()
    return pixmap


class ImageGrid(QListWidget):
    """``set_images([(path, caption, tooltip), …])``: tiles that fill in as thumbnails come."""

    def __init__(
        self,
        cache: ThumbnailCache | None = None,
        parent: QWidget | None = None,
        icon_size: int = ICON_SIZE,
    ) -> None:
        super().__init__(parent)
        if cache is None:  # sharp at 200 %: the app's shared cache makes 128 px ones
            cache = ThumbnailCache(size=max(THUMBNAIL_SIZE, icon_size * 2), parent=self)
        self._cache = cache
        self._items: dict[str, list[QListWidgetItem]] = {}
        self._tooltips: dict[str, str] = {}
        self._icon_size = icon_size
        self._make_icons()
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keeps the file's number
        self.setIconSize(QSize(icon_size, icon_size))
        self.setGridSize(QSize(icon_size + 28, icon_size + self.fontMetrics().height() * 2 + 14))
        self.setSpacing(6)
        self._cache.thumbnail_ready.connect(self._on_cache_thumbnail_ready)
        self._cache.thumbnail_failed.connect(self._on_cache_thumbnail_failed)
        self._cache.pending_cleared.connect(self._on_cache_pending_cleared)
        self.itemDoubleClicked.connect(self._on_self_item_double_clicked)

    @property
    def cache(self) -> ThumbnailCache:
        return self._cache

    # ------------------------------------------------------------------ data

    def set_images(self, images: Iterable[tuple[str | Path, str, str]]) -> None:
        """Replace the tiles: one per (path, caption, tooltip), in that order."""
        self.clear()
        self._items, self._tooltips = {}, {}
        for path, caption, tooltip in images:
            key = str(path)
            item = QListWidgetItem(self._waiting, caption)
            item.setData(PathRole, Path(path))
            item.setData(StateRole, "waiting")
            item.setToolTip(tooltip or caption)
            item.setSizeHint(self.gridSize())
            self.addItem(item)
            self._items.setdefault(key, []).append(item)
            self._tooltips[key] = tooltip or caption
        self._request(list(self._items))

    def paths(self) -> list[Path]:
        return [self.item(row).data(PathRole) for row in range(self.count())]

    def selected_paths(self) -> list[Path]:
        rows = sorted(self.row(item) for item in self.selectedItems())
        return [self.item(row).data(PathRole) for row in rows]

    def states(self) -> dict[Path, str]:
        """Each file's tile: "waiting", "ready" or "failed" (for tests and the status line)."""
        items = [self.item(row) for row in range(self.count())]
        return {item.data(PathRole): item.data(StateRole) for item in items}

    def _request(self, keys: list[str]) -> None:
        # The cache answers the newest request first: ask from the end, so the tiles at
        # the top, which the user sees, fill in first.
        for key in reversed(keys):
            reason = self._cache.failure(key)
            if reason is not None:
                self._on_cache_thumbnail_failed(key, reason)
            else:
                self._cache.request(key)

    # ------------------------------------------------------------------ the cache

    def _on_cache_thumbnail_ready(self, path: object, image: QImage) -> None:
        items = self._items.get(str(path))
        if not items:
            return
        icon = QIcon(square_pixmap(image, self._icon_size, self.devicePixelRatioF()))
        for item in items:
            item.setIcon(icon)
            item.setData(StateRole, "ready")

    def _on_cache_thumbnail_failed(self, path: object, reason: str) -> None:
        key = str(path)
        for item in self._items.get(key, ()):
            item.setIcon(self._broken)
            item.setData(StateRole, "failed")
            item.setToolTip(f"{self._tooltips[key]}\nNo picture: {reason}")

    def _on_cache_pending_cleared(self) -> None:
        waiting = [k for k, items in self._items.items() if items[0].data(StateRole) == "waiting"]
        self._request(waiting)

    # ------------------------------------------------------------------ look and feel

    def _make_icons(self) -> None:
        ratio = self.devicePixelRatioF()
        self._waiting = placeholder_icon(self.palette(), self._icon_size, ratio)
        self._broken = broken_icon(self.palette(), self._icon_size, ratio)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.StyleChange):
            self._make_icons()
            for row in range(self.count()):
                item = self.item(row)
                state = item.data(StateRole)
                if state != "ready":
                    item.setIcon(self._broken if state == "failed" else self._waiting)

    def _on_self_item_double_clicked(self, item: QListWidgetItem) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.data(PathRole))))
