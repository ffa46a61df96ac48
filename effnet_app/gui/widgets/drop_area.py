"""The central invitation: drop images or folders here (or open them)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QWidget):
    """What a first-time user sees: what to do, and two buttons that do it."""

    open_images_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Drop images or folders here")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        hint = QLabel(
            "Each image gets its top predictions from an EfficientNet trained on ImageNet.\n"
            "JPEG, PNG, WebP, TIFF, BMP and GIF work; folders are searched recursively."
        )
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted in any theme
        open_images = QPushButton("Open images…")
        open_folder = QPushButton("Open folder…")
        open_images.clicked.connect(self.open_images_requested)
        open_folder.clicked.connect(self.open_folder_requested)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(open_images)
        buttons.addWidget(open_folder)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addStretch()
        layout.addWidget(title, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addStretch()
