"""The central invitation: drop images or folders here (or open them)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QWidget):
    """What a first-time user sees: what to do, and the buttons that do it."""

    open_images_requested = Signal()
    open_folder_requested = Signal()
    train_requested = Signal()  # "Train a new model…": teach it the user's own classes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Drop images or folders here")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        hint = QLabel(
            "Each image gets its top predictions from an EfficientNet trained on ImageNet,\n"
            "or from a model you train on your own classes.\n"
            "JPEG, PNG, WebP, TIFF, BMP and GIF work; folders are searched recursively."
        )
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted in any theme
        open_images = QPushButton("Open images…")
        open_folder = QPushButton("Open folder…")
        self.train_button = QPushButton("Train a new model…")
        self.train_button.setToolTip("Teach a model your own classes from labelled folders")
        open_images.clicked.connect(self.open_images_requested)
        open_folder.clicked.connect(self.open_folder_requested)
        self.train_button.clicked.connect(self.train_requested)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(open_images)
        buttons.addWidget(open_folder)
        buttons.addSpacing(12)
        buttons.addWidget(self.train_button)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addStretch()
        layout.addWidget(title, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addStretch()
