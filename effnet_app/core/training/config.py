"""What a training run is asked to do, what it reports while it runs, and what it returns.

Plain data only (no torch at import), so the GUI and the CLI can build a ``TrainConfig``
and read events without loading PyTorch. ``train()`` yields ``Progress`` while it computes
features and out-of-fold checks (a ``TrainPhase`` says which), and the four events below.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..jobs import Progress

MODES = ("head", "finetune")
HEAD_SOLVERS = ("lbfgs", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    base: str = "lite0"  # zoo key
    device: str = "auto"
    mode: str = "head"  # "head" (Quick) | "finetune" (Thorough)
    epochs: int = 10
    batch_size: int | None = None
    lr_head: float = 1e-2  # AdamW head solver; phase 2 gives the head 2 x lr_backbone
    lr_backbone: float = 5e-5
    weight_decay: float = 0.01
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = True  # finetune: random crops and flips of the decoded images
    label_smoothing: float = 0.1
    patience: int = 3  # early stopping (epochs without val-loss improvement)
    head_solver: str = "lbfgs"  # "lbfgs": convex, exact and deterministic; "adamw": epochs
    head_c: float = 1.0  # inverse L2 strength on standardised features (as scikit-learn's C)
    folds: int = 5  # out-of-fold predictions for label issues and calibration
    finetune_stages: int = 3  # stages unfrozen from the top (plus the head conv); 0 = all
    memory_budget_mb: int = 1024  # decoded images kept in memory for fine-tuning; rest on disk
    max_label_issues: int = 50

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.head_solver not in HEAD_SOLVERS:
            raise ValueError(f"head_solver must be one of {HEAD_SOLVERS}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be between 0 and 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> TrainConfig:
        """Known keys only, so a manifest written by a newer version still loads."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(d).items() if k in known})


@dataclass(frozen=True)
class TrainPhase:
    name: str  # "features", "head", "finetune", "checks", "calibrate"
    message: str


@dataclass(frozen=True)
class TrainBatch:
    epoch: int
    progress: Progress  # batches (or solver steps) of this phase, with rate and ETA
    loss: float


@dataclass(frozen=True)
class TrainEpoch:
    epoch: int
    phase: str
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float


@dataclass(frozen=True)
class TrainMessage:
    level: str  # "info" | "warning"
    text: str


def _clean(value):
    """JSON-able: NaN/inf become None, tuples lists, numpy scalars floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class EvalResult:
    """Metrics of a model on a labelled folder (``evaluate``), and of ``train``'s validation."""

    classes: tuple[str, ...]
    accuracy: float
    baseline: float  # always guessing the biggest class
    per_class: tuple[dict, ...]  # name, precision, recall, f1, support
    confusion: tuple[tuple[int, ...], ...]  # rows = true, cols = predicted
    predictions: tuple[dict, ...]  # path, label, predicted, probabilities (list)
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason): images that could not be read
    ece: float | None = None

    def summary(self) -> dict:
        out = {k: getattr(self, k) for k in ("classes", "accuracy", "baseline", "per_class")}
        out.update(confusion=self.confusion, images=len(self.predictions), ece=self.ece)
        out["problems"] = len(self.problems)
        return _clean(out)


@dataclass(frozen=True)
class TrainResult:
    config: TrainConfig
    classes: tuple[str, ...]
    accuracy: float
    baseline: float  # always guessing the biggest class (of validation)
    per_class: tuple[dict, ...]  # name, precision, recall, f1, support
    confusion: tuple[tuple[int, ...], ...]  # rows = true, cols = predicted
    val_predictions: tuple[dict, ...]  # path, label, predicted, probabilities (list)
    label_issues: tuple[dict, ...]  # path, given, suggested, score (lowest first), split
    temperature: float
    ece_before: float
    ece_after: float
    unknown_threshold: float
    unknown_flagged: float  # fraction of validation flagged "not sure"
    unknown_errors_avoided: int  # wrong predictions among the flagged
    near_duplicates: int  # images with a near-duplicate (kept on one side of the split)
    history: tuple[TrainEpoch, ...]
    state_dict: dict = field(repr=False, compare=False)  # the whole network, CPU tensors
    kept_phase: str = "head"  # which phase's network state_dict holds
    train_size: int = 0
    val_size: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        """JSON-able, for the bundle manifest and the CLI (no per-image rows, no tensors)."""
        skip = {"config", "state_dict", "val_predictions", "history"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out["config"] = self.config.to_dict()
        out["history"] = [asdict(e) for e in self.history]
        out["label_issues"] = [{**i, "path": str(i["path"])} for i in self.label_issues]
        return _clean(out)
