"""The model and device pickers in the toolbar."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

KEY_ROLE = Qt.ItemDataRole.UserRole
TRAINED_HEADER = "Your trained models"


class ModelPicker(QComboBox):
    """Lite0 first, then B0-B7; each entry shows size, accuracy and whether it is here.
    The user's trained models follow under a header that cannot be chosen."""

    model_chosen = Signal(str)  # by the user, not by code

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setToolTip("The network that classifies your images")
        self.addItem("Loading models…")
        self.setEnabled(False)
        self.catalog = None
        self.activated.connect(self._on_self_activated)

    def set_catalog(self, catalog, selected: str) -> None:
        self.catalog = catalog
        self.blockSignals(True)
        self.clear()
        for info in catalog.pretrained:
            self._add_model(info)
        if catalog.trained:
            self.insertSeparator(self.count())
            self._add_header(TRAINED_HEADER)
            for info in catalog.trained:
                self._add_model(info)
        self.blockSignals(False)
        self.setEnabled(True)
        self.select(selected)

    def _add_model(self, info) -> None:
        self.addItem(f"{info.name}  —  {info.summary}", info.key)
        self.setItemData(self.count() - 1, info.about, Qt.ItemDataRole.ToolTipRole)

    def _add_header(self, text: str) -> None:
        """A bold, greyed row that keyboard, wheel and clicks all pass over."""
        item = QStandardItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font()
        font.setBold(True)
        item.setFont(font)
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        model.appendRow(item)

    def headers(self) -> list[str]:
        """The texts of the rows that are not models (for tests and screenshots)."""
        return [
            self.itemText(i)
            for i in range(self.count())
            if self.itemData(i, KEY_ROLE) is None and self.itemText(i)
        ]

    def is_selectable_at(self, index: int) -> bool:
        model = self.model()
        flags = model.flags(model.index(index, 0))
        return bool(flags & Qt.ItemFlag.ItemIsEnabled and flags & Qt.ItemFlag.ItemIsSelectable)

    def select(self, key: str) -> None:
        index = self.findData(key, KEY_ROLE)
        if index >= 0:
            self.setCurrentIndex(index)

    def current_key(self) -> str | None:
        return self.currentData(KEY_ROLE)

    def _on_self_activated(self, index: int) -> None:
        key = self.itemData(index, KEY_ROLE)
        if key is not None:  # never the header, even if a style lets it be clicked
            self.model_chosen.emit(key)


class DevicePicker(QComboBox):
    """Auto, CPU and each CUDA device by name; CUDA is disabled with the reason when absent."""

    device_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip("Where the network runs")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # "CUDA GPU"
        self.addItem("Auto", "auto")
        self.addItem("CPU", "cpu")
        self.activated.connect(lambda i: self.device_chosen.emit(self.itemData(i, KEY_ROLE)))

    def set_devices(self, choices, selected: str) -> None:
        self.blockSignals(True)
        self.clear()
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        for choice in choices:
            self.addItem(choice.label, choice.key)
            item = model.item(self.count() - 1)
            if not choice.available:
                item.setEnabled(False)
                item.setToolTip(choice.reason)
        self.blockSignals(False)
        self.select(selected)

    def select(self, key: str) -> None:
        """Show ``key``, even when it is greyed out or not on this computer (a saved
        "cuda"): the picker shows what the runs use, so the message about it makes sense."""
        index = self.findData(key, KEY_ROLE)
        if index < 0:
            self.addItem(key, key)
            index = self.count() - 1
            item = self.model().item(index)  # type: ignore[attr-defined]
            item.setEnabled(False)
            item.setToolTip("That device does not exist here.")
        self.setCurrentIndex(index)

    def is_enabled_at(self, index: int) -> bool:
        model = self.model()
        return bool(model.flags(model.index(index, 0)) & Qt.ItemFlag.ItemIsEnabled)

    def entry(self, key: str) -> tuple[bool, str] | None:
        """(enabled, tooltip) of the entry with this key, or None."""
        index = self.findData(key, KEY_ROLE)
        if index < 0:
            return None
        return self.is_enabled_at(index), str(
            self.itemData(index, Qt.ItemDataRole.ToolTipRole) or ""
        )

    def current_key(self) -> str:
        return self.currentData(KEY_ROLE) or "auto"
