"""One inline bar at the top of the window for expected problems (offline, no CUDA, ...)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QWidget,
)

LEVELS = {
    "error": (QStyle.StandardPixmap.SP_MessageBoxCritical, "#c0392b"),
    "warning": (QStyle.StandardPixmap.SP_MessageBoxWarning, "#d68910"),
    "info": (QStyle.StandardPixmap.SP_MessageBoxInformation, "#2e86c1"),
}


class MessageBar(QFrame):
    """Shows one sentence with optional action buttons; the newest message replaces the last."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 4, 4)
        self._layout.addWidget(self.icon)
        self._layout.addWidget(self.text, 1)
        self._buttons: list[QPushButton] = []
        self.close_button = QPushButton("Dismiss")
        self.close_button.setFlat(True)
        self.close_button.clicked.connect(self.dismiss)
        self._layout.addWidget(self.close_button)
        self.level = ""
        self.hide()

    def show_message(
        self,
        sentence: str,
        level: str = "error",
        actions: list[tuple[str, Callable[[], None]]] | None = None,
    ) -> None:
        for button in self._buttons:
            button.deleteLater()
        self._buttons = []
        pixmap = LEVELS[level][0]
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.icon.setPixmap(self.style().standardIcon(pixmap).pixmap(size, size))
        self.text.setText(sentence)
        self.level = level
        self._tint()
        for text, callback in actions or []:
            button = QPushButton(text)
            button.clicked.connect(callback)
            self._layout.insertWidget(self._layout.count() - 1, button)
            self._buttons.append(button)
        self.show()

    def _tint(self) -> None:
        """The level's colour at 15 % over whatever the window paints below: readable in
        light and dark themes alike, and still right after View › Theme changes them."""
        colour = QColor(LEVELS[self.level][1])
        self.setStyleSheet(
            f"#messageBar {{ border: 1px solid {colour.name()}; border-radius: 4px; "
            f"background: rgba({colour.red()}, {colour.green()}, {colour.blue()}, 38); }}"
        )

    @property
    def action_texts(self) -> list[str]:
        return [b.text() for b in self._buttons]

    def trigger(self, text: str) -> None:
        """Click the action button with this text (keyboard users and tests)."""
        for button in self._buttons:
            if button.text() == text:
                button.click()
                return
        raise KeyError(text)

    def dismiss(self) -> None:
        self.level = ""
        self.hide()
