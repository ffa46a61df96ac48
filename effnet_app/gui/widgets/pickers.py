"""The model and device pickers in the toolbar."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

KEY_ROLE = Qt.ItemDataRole.UserRole


class ModelPicker(QComboBox):
    """Lite0 first, then B0-B7; each entry shows size, accuracy and whether it is here."""

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
        for info in catalog.models:
            self.addItem(f"{info.name}  —  {info.summary}", info.key)
            self.setItemData(self.count() - 1, info.about, Qt.ItemDataRole.ToolTipRole)
        self.blockSignals(False)
        self.setEnabled(True)
        self.select(selected)

    def select(self, key: str) -> None:
        index = self.findData(key, KEY_ROLE)
        if index >= 0:
            self.setCurrentIndex(index)

    def current_key(self) -> str | None:
        return self.currentData(KEY_ROLE)

    def _on_self_activated(self, index: int) -> None:
        self.model_chosen.emit(self.itemData(index, KEY_ROLE))


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
