"""The preview of the selected image: large, its top-5 with bars, and a Grad-CAM overlay.

Decoding the image and computing the heatmap run in Workers; the slider only changes
how the two ready-made images are blended when painted.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ...core.data import images
from ...core.errors import AppError
from ..display import display_name, display_path
from ..workers import Worker
from .confidence_delegate import bars_height, paint_bars

PREVIEW_SIDE = 1024  # decode previews to at most this side: sharp on a 4K screen's panel


def pil_to_qimage(image) -> QImage:
    if image.mode == "RGBA":
        data = image.tobytes()
        fmt, depth = QImage.Format.Format_RGBA8888, 4
    else:
        image = image.convert("RGB")
        data = image.tobytes()
        fmt, depth = QImage.Format.Format_RGB888, 3
    return QImage(data, image.width, image.height, depth * image.width, fmt).copy()


def load_preview_job(path: str, side: int, cancel):
    """Worker job: the image scaled to fit ``side`` as a QImage (QImage is thread-safe)."""
    loaded = images.load_image(path, target_size=side)
    cancel.raise_if_cancelled()
    if isinstance(loaded, images.ImageProblem):
        raise AppError(f"{display_name(loaded.path)} cannot be shown: {loaded.reason}.")
    loaded.thumbnail((side, side))
    return pil_to_qimage(loaded)
    yield  # a generator, like every job


def heatmap_job(session, model_key: str, device: str, path: str, side: int, cancel):
    """Worker job: Grad-CAM for the top-1 class, coloured and scaled for the preview.

    Cold areas are transparent (alpha grows with the square root of the heat), so the
    photo stays visible where the model did not look, and the part outside the centre
    crop, which the model never saw, is left as it is.
    """
    import numpy as np
    from PIL import Image

    from ...core.runtime.explain import colourise

    heat = yield from session.explain(model_key, device, path, cancel=cancel)
    cancel.raise_if_cancelled()
    values = np.clip(heat.values, 0.0, 1.0)
    alpha = (np.sqrt(values) * 255).astype(np.uint8)
    coloured = Image.fromarray(np.dstack([colourise(values), alpha]), "RGBA")
    coloured.thumbnail((side, side))
    return heat.label, heat.probability, pil_to_qimage(coloured)


class ImageView(QWidget):
    """Paints an image scaled to fit, with an optional overlay blended at ``opacity``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.overlay: QImage | None = None
        self.opacity = 0.5
        self.placeholder = "Select a row to preview it"
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(360, 280)

    def target_rect(self) -> QRectF:
        if self.image is None or self.image.isNull():
            return QRectF()
        size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.image is None or self.image.isNull():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        target = self.target_rect()
        painter.drawImage(target, self.image)
        if self.overlay is not None and self.opacity > 0:
            painter.setOpacity(self.opacity)
            painter.drawImage(target, self.overlay)


class BarsView(QWidget):
    """The top-5 predictions of the previewed image, with bars."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: tuple = ()
        self.setMinimumHeight(bars_height(self.fontMetrics(), 5) + 8)

    def set_predictions(self, predictions) -> None:
        self.predictions = tuple(predictions)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        if self.predictions:
            painter = QPainter(self)
            paint_bars(
                painter, self.rect().adjusted(4, 4, -4, -4), self.predictions, self.palette()
            )


class PreviewPanel(QWidget):
    """Large image, top-5, and a Grad-CAM toggle with an opacity slider."""

    def __init__(self, session, current_model, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.current_model = current_model  # () -> (model_key, device)
        self.result = None
        self._image_worker: Worker | None = None
        self._heat_worker: Worker | None = None
        self._heat_for: tuple | None = None
        self._heat_image: QImage | None = None  # kept while unticked: ticking again is instant
        self.title = QLabel("No image selected")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.view = ImageView()
        self.bars = BarsView()
        self.heatmap_box = QCheckBox("Show where the model looked (Grad-CAM)")
        self.heatmap_box.setToolTip(
            "Colours the parts of the image that raised the top-1 score the most"
        )
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setToolTip("Heatmap opacity")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.heatmap_box, 1)
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.bars)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.heatmap_box.toggled.connect(self._on_heatmap_box_toggled)
        self.opacity.valueChanged.connect(self._on_opacity_value_changed)
        self._on_opacity_value_changed(self.opacity.value())

    def show_result(self, result) -> None:
        """Preview one ImageResult (or None to clear)."""
        self.result = result
        self.view.image = None
        self.view.overlay = None
        self._heat_for = None
        self._heat_image = None
        self._cancel_workers()
        if result is None:
            self.title.setText("No image selected")
            self.bars.set_predictions(())
            self.status.setText("")
            self.view.update()
            return
        self.title.setText(f"<b>{html.escape(display_name(result.path))}</b>")
        self.title.setToolTip(display_path(result.path))
        self.bars.set_predictions(result.predictions)
        self.status.setText(result.problem or "")
        if result.problem is not None:
            # The reason is the preview: decoding would only fail again (or, for a folder
            # that could not be read, say something less useful).
            self.view.placeholder = "Cannot show this image"
            self.view.update()
            return
        self.view.placeholder = "Loading…"
        self.view.update()
        self._image_worker = Worker(load_preview_job, str(result.path), PREVIEW_SIDE, parent=self)
        self._image_worker.returned.connect(self._on_image_worker_returned)
        self._image_worker.errored.connect(self._on_worker_errored)
        self._image_worker.ended.connect(self._on_worker_ended)
        self._image_worker.start()
        if self.heatmap_box.isChecked():
            self._start_heatmap()

    def _cancel_workers(self) -> None:
        for worker in (self._image_worker, self._heat_worker):
            if worker is not None:
                worker.cancel()
        self._image_worker = self._heat_worker = None

    def _on_image_worker_returned(self, image: QImage) -> None:
        self.view.image = image
        self.view.update()

    def _on_worker_errored(self, exc: BaseException) -> None:
        self.view.placeholder = "Cannot show this image"
        self.status.setText(str(exc))
        self.view.update()

    def _on_worker_ended(self) -> None:
        sender = self.sender()  # it deletes itself: forget it
        if sender is self._image_worker:
            self._image_worker = None
        elif sender is self._heat_worker:
            self._heat_worker = None

    def _on_heatmap_box_toggled(self, on: bool) -> None:
        if on:
            self._start_heatmap()
        else:
            self.view.overlay = None
            self.view.update()

    def _start_heatmap(self) -> None:
        if self.result is None or self.result.problem:
            return
        key, device = self.current_model()
        wanted = (str(self.result.path), key, device)
        if self._heat_for == wanted and self._heat_image is not None:
            self.view.overlay = self._heat_image
            self.view.update()
            return
        if self._heat_worker is not None:
            self._heat_worker.cancel()
        self._heat_for = wanted
        self._heat_image = None
        self.status.setText("Computing the heatmap…")
        worker = Worker(
            heatmap_job, self.session, key, device, wanted[0], PREVIEW_SIDE, parent=self
        )
        worker.returned.connect(self._on_heat_worker_returned)
        worker.errored.connect(self._on_worker_errored)
        worker.ended.connect(self._on_worker_ended)
        self._heat_worker = worker
        worker.start()

    def _on_heat_worker_returned(self, outcome) -> None:
        label, probability, image = outcome
        self._heat_image = image
        if not self.heatmap_box.isChecked():  # switched off while it was computed
            self.status.setText("")
            return
        self.view.overlay = image
        self.status.setText(f"Heatmap for “{label}” ({probability:.0%})")
        self.view.update()

    def _on_opacity_value_changed(self, value: int) -> None:
        self.view.opacity = value / 100
        self.view.update()
