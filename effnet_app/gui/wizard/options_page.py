"""Page 2: the base model (with a time estimate measured on the user's photos), the device,
Quick or Thorough, epochs, validation share and seed; advanced settings folded away; and
"Compare models", which trains Quick on every base model here and plots accuracy
against speed."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from ...core.errors import sentence_of
from ...core.models import zoo
from ...core.training.config import TrainConfig
from .compare_box import CompareBox

MODES = (
    ("head", "Quick: train a new head", "the network stays as it is; seconds to minutes"),
    (
        "finetune",
        "Thorough: fine-tune the network",
        "its last layers learn too; slower, and kept only if it beats Quick",
    ),
)
DEFAULTS = TrainConfig()


def duration(seconds: float) -> str:
    seconds = max(1, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _spin(low, high, value, suffix="") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _rate(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(6)
    box.setRange(1e-6, 1.0)
    box.setSingleStep(1e-5)
    box.setValue(value)
    return box


class OptionsPage(QWizardPage):
    def __init__(self, state, controller, settings, parent=None) -> None:
        super().__init__(parent)
        controller.jobs_changed.connect(self.completeChanged)
        self.state, self.controller, self.settings = state, controller, settings
        self.catalog = None
        self._wanted: tuple | None = None  # (base, device) the estimate should be for
        self._asked: tuple | None = None  # (base, device) of the estimate running
        self.setTitle("How to train")
        self.setSubTitle("Step 2 of 5: the model to start from, and how long to train.")
        self._build()
        self._load_settings()
        controller.estimate_finished.connect(self._on_controller_estimate_finished)
        controller.estimate_failed.connect(self._on_controller_estimate_failed)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.base = QComboBox()
        self.base.addItem("Loading models…")
        self.base.currentIndexChanged.connect(self._on_base_changed)
        self.download = QPushButton("Download…")
        self.download.setVisible(False)
        self.download.clicked.connect(self._download)
        base_row = QHBoxLayout()
        base_row.addWidget(self.base, 1)
        base_row.addWidget(self.download)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.device = QComboBox()
        self.device.addItem("Auto", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.currentIndexChanged.connect(self._on_device_changed)
        self.modes = QButtonGroup(self)
        mode_box = QVBoxLayout()
        for index, (key, title, line) in enumerate(MODES):
            button = QRadioButton(f"{title} — {line}")
            button.setProperty("mode", key)
            self.modes.addButton(button, index)
            mode_box.addWidget(button)
        self.epochs = _spin(1, 200, DEFAULTS.epochs)
        self.epochs.setToolTip("Thorough: epochs at most; it stops early when it stops improving")
        self.val = _spin(5, 50, round(DEFAULTS.val_fraction * 100), " %")
        self.val.setToolTip("Photos kept aside to measure the model honestly, never trained on")
        self.seed = _spin(0, 999_999, DEFAULTS.seed)
        self.seed.setToolTip("The same seed, photos and options give the same model")
        form = QFormLayout()
        form.addRow("Start from", base_row)
        form.addRow("", self.estimate_label)
        form.addRow("Device", self.device)
        form.addRow("Mode", mode_box)
        form.addRow("Epochs", self.epochs)
        form.addRow("Validation", self.val)
        form.addRow("Seed", self.seed)
        self.note = QLabel("")
        self.note.setVisible(False)
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(form)
        layout.addWidget(self._advanced())
        self.compare = CompareBox(self)
        layout.addWidget(self.compare, 1)

    def _advanced(self) -> QWidget:
        box = QWidget()
        toggle = QToolButton(text="Advanced settings")
        toggle.setCheckable(True)
        toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced = QGroupBox()
        self.advanced.setVisible(False)
        self.lr_head = _rate(DEFAULTS.lr_head)
        self.lr_backbone = _rate(DEFAULTS.lr_backbone)
        self.weight_decay = QDoubleSpinBox(decimals=4, minimum=0.0, maximum=1.0, singleStep=0.01)
        self.weight_decay.setValue(DEFAULTS.weight_decay)
        self.batch = _spin(0, 1024, 0)
        self.batch.setSpecialValueText("automatic")
        self.augment = QCheckBox("Random crops and flips while fine-tuning")
        self.augment.setChecked(DEFAULTS.augment)
        form = QFormLayout(self.advanced)
        form.addRow("Learning rate, head (AdamW head)", self.lr_head)
        form.addRow("Learning rate, network (Thorough)", self.lr_backbone)
        form.addRow("Weight decay", self.weight_decay)
        form.addRow("Batch size", self.batch)
        form.addRow("", self.augment)

        def flip(shown: bool) -> None:
            self.advanced.setVisible(shown)
            toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

        toggle.toggled.connect(flip)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(toggle, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.advanced)
        return box

    # ------------------------------------------------------------------ catalog
    def set_catalog(self, catalog) -> None:
        self.catalog = catalog
        wanted = self.base_key() or str(self.settings.value("wizard/base", zoo.DEFAULT_MODEL))
        self.base.blockSignals(True)
        self.base.clear()
        for info in catalog.models:
            if info.family in ("efficientnet", "lite"):
                self.base.addItem(f"{info.name} — {info.summary}", info.key)
                self.base.setItemData(
                    self.base.count() - 1, info.about, Qt.ItemDataRole.ToolTipRole
                )
        index = self.base.findData(wanted)
        self.base.setCurrentIndex(max(0, index))
        self.base.blockSignals(False)
        wanted_device = (
            self.device_key()
            if self.device.count() > 2
            else str(self.settings.value("wizard/device", "auto"))
        )
        self.device.blockSignals(True)
        self.device.clear()
        for choice in catalog.devices:
            self.device.addItem(choice.label, choice.key)
            item = self.device.model().item(self.device.count() - 1)  # type: ignore[attr-defined]
            if not choice.available:
                item.setEnabled(False)
                item.setToolTip(choice.reason)
        found = self.device.findData(wanted_device)
        self.device.setCurrentIndex(found if found >= 0 and self._device_ok(found) else 0)
        self.device.blockSignals(False)
        self.compare.set_catalog(catalog)
        self._on_base_changed()

    def _device_ok(self, index: int) -> bool:
        model = self.device.model()
        return bool(model.flags(model.index(index, 0)) & Qt.ItemFlag.ItemIsEnabled)

    def base_key(self) -> str | None:
        return self.base.currentData()

    def device_key(self) -> str:
        return self.device.currentData() or "auto"

    def base_info(self):
        key = self.base_key()
        return self.catalog.model(key) if self.catalog and key else None

    def select_base(self, key: str) -> None:
        index = self.base.findData(key)
        if index >= 0:
            self.base.setCurrentIndex(index)

    # ------------------------------------------------------------------ estimate
    def initializePage(self) -> None:  # noqa: N802 - Qt's name
        self.compare.set_dataset(self.state.training_data())
        self._measure()

    def _on_base_changed(self, *_args) -> None:
        info = self.base_info()
        missing = info is not None and not info.available
        self.download.setVisible(missing)
        if info is not None:
            self.settings.setValue("wizard/resolution", info.resolution)
        self._measure()
        self.completeChanged.emit()

    def _on_device_changed(self, *_args) -> None:
        self._measure()

    def _measure(self) -> None:
        info, data = self.base_info(), self.state.training_data()
        if info is None or data is None:
            self._wanted = None
            self.estimate_label.setText("")
            return
        if not info.available:
            self._wanted = None
            self.estimate_label.setText(
                f"{info.name}'s weights are not on this computer yet: press Download… "
                "(once; they are kept), or choose a model that is here."
            )
            return
        self._wanted = (info.key, self.device_key())
        self.estimate_label.setText("Measuring how long training takes on a few of your photos…")
        if self.controller.estimate(info.key, data, self.device_key(), self.val.value() / 100):
            self._asked = self._wanted  # else one is running: its end asks again

    def _on_controller_estimate_finished(self, estimate) -> None:
        if self._asked != self._wanted:
            self._asked = None
            # The choice changed while measuring; ask again once this job has ended.
            QTimer.singleShot(0, self._measure)
            return
        self.estimate_label.setText(
            f"Quick takes about {duration(estimate.seconds_head)} in all; Thorough about "
            f"{duration(estimate.seconds_per_epoch)} per epoch on top. "
            f"{estimate.ms_per_image:.0f} ms per photo on {estimate.device} "
            f"(measured on {estimate.images_measured} of your photos)."
        )

    def _on_controller_estimate_failed(self, exc) -> None:
        if self._asked != self._wanted:
            self._asked = None
            QTimer.singleShot(0, self._measure)
            return
        self._asked = None
        self.estimate_label.setText(f"Could not measure the time: {sentence_of(exc)}")

    def _download(self) -> None:
        info = self.base_info()
        fetch = getattr(self.wizard().parent(), "download_weights", None)
        if info is None:
            return
        if fetch is None:
            self.estimate_label.setText(
                f"Download {info.name} first: effnet-app download {info.key}"
            )
            return
        if fetch(info.key):
            self.wizard().reload_catalog()

    def show_note(self, text: str) -> None:
        """A line above the options: why the user is back here (a cancelled run)."""
        self.note.setText(f"<b>{text}</b>")
        self.note.setVisible(bool(text))

    # ------------------------------------------------------------------ the options
    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        info = self.base_info()
        return info is not None and info.available and not self.controller.comparing

    def mode(self) -> str:
        button = self.modes.checkedButton()
        return button.property("mode") if button is not None else "head"

    def config(self) -> TrainConfig:
        return TrainConfig(
            base=self.base_key() or zoo.DEFAULT_MODEL,
            device=self.device_key(),
            mode=self.mode(),
            epochs=self.epochs.value(),
            batch_size=self.batch.value() or None,
            lr_head=self.lr_head.value(),
            lr_backbone=self.lr_backbone.value(),
            weight_decay=self.weight_decay.value(),
            val_fraction=self.val.value() / 100,
            seed=self.seed.value(),
            augment=self.augment.isChecked(),
        )

    def validatePage(self) -> bool:  # noqa: N802 - Qt's name
        self.show_note("")
        self.controller.cancel_estimate()  # training needs the device now
        self.save_settings()
        return True

    def save_settings(self) -> None:
        config = self.config()
        for key in ("base", "device", "mode", "epochs", "val_fraction", "seed", "augment"):
            self.settings.setValue(f"wizard/{key}", getattr(config, key))
        for key in ("lr_head", "lr_backbone", "weight_decay", "batch_size"):
            self.settings.setValue(f"wizard/{key}", getattr(config, key) or 0)

    def _load_settings(self) -> None:
        value = self.settings.value
        mode = str(value("wizard/mode", "head"))
        self.modes.button(1 if mode == "finetune" else 0).setChecked(True)
        self.epochs.setValue(_int(value("wizard/epochs"), DEFAULTS.epochs))
        self.val.setValue(round(_float(value("wizard/val_fraction"), DEFAULTS.val_fraction) * 100))
        self.seed.setValue(_int(value("wizard/seed"), DEFAULTS.seed))
        self.batch.setValue(_int(value("wizard/batch_size"), 0))
        self.lr_head.setValue(_float(value("wizard/lr_head"), DEFAULTS.lr_head))
        self.lr_backbone.setValue(_float(value("wizard/lr_backbone"), DEFAULTS.lr_backbone))
        self.weight_decay.setValue(_float(value("wizard/weight_decay"), DEFAULTS.weight_decay))
        self.augment.setChecked(str(value("wizard/augment", "true")).lower() != "false")


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
