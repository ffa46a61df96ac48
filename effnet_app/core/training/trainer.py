"""``train()``: a labelled dataset in, a trained network and its report out.

Steps, each announced by a ``TrainPhase``:

1. ``features``: pooled features of every image from the frozen backbone (cached on disk
   by content, so a second run decodes nothing); near-duplicates grouped, then the split
   (a group never straddles train and validation).
2. ``head``: a new head fitted on the training features (L-BFGS or AdamW).
3. ``checks``: out-of-fold predictions on the features; likely mislabelled images.
4. ``finetune`` (mode "finetune"): the last stages trained too; kept only if it beats the
   head on validation.
5. ``calibrate``: temperature and "not sure" threshold from held-out logits.

The result holds the whole network's state dict (backbone + head, CPU tensors) as
``spec.build(num_classes=N)`` expects it.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import numpy as np

from ..devices import resolve_device
from ..errors import DatasetError
from ..jobs import NEVER, CancelToken, RateMeter
from . import calibrate as calib
from . import features as feats
from . import head as heads
from . import label_issues, network
from .config import TrainBatch, TrainConfig, TrainEpoch, TrainMessage, TrainPhase, TrainResult
from .metrics import classification_report, log_loss, softmax


def train(
    config: TrainConfig, dataset, cancel: CancelToken = NEVER
) -> Generator[object, None, TrainResult]:
    """Job: train on ``dataset`` (``core.data.dataset.Dataset``) as ``config`` says."""
    run = _Run(config, dataset, cancel)
    yield from run.prepare()
    yield from run.fit_head()
    yield from run.checks()
    if config.mode == "finetune":
        yield from run.finetune()
    yield from run.calibrate()
    return run.result()


def near_duplicate_count(groups) -> int:
    """Images that share their group with another image."""
    counts = np.bincount(np.asarray(groups, dtype=int)) if len(groups) else np.zeros(0, int)
    return int(counts[counts > 1].sum())


class _Run:
    """The state of one training run, step by step."""

    def __init__(self, config: TrainConfig, dataset, cancel: CancelToken) -> None:
        if len(dataset.classes) < 2 or not dataset.samples:
            raise DatasetError("Training needs at least two classes with images in each.")
        if not getattr(dataset, "usable", True):
            first = dataset.errors[0].sentence if dataset.errors else "The dataset has errors."
            raise DatasetError(first)
        self.config, self.dataset, self.cancel = config, dataset, cancel
        self.started = time.monotonic()
        self.classes = tuple(dataset.classes)
        self.labels = np.array([s.label for s in dataset.samples], dtype=int)
        self.history: list[TrainEpoch] = []
        self.kept = "head"
        self.calibration_source = "out-of-fold"

    # ------------------------------------------------------------------ features, split
    def prepare(self):
        config = self.config
        self.spec = network.base_spec(config.base)
        self.device = resolve_device(config.device)
        yield TrainPhase("features", f"Reading images through {self.spec.name}…")
        self.pretrained = network.load_pretrained(self.spec)
        self.cancel.raise_if_cancelled()
        found = yield from feats.extract(
            self.spec,
            self.dataset.samples,
            model=self.pretrained,
            device=self.device,
            batch_size=config.batch_size,
            cancel=self.cancel,
        )
        self.features = found.plain
        for index, reason in found.problems[:5]:
            yield TrainMessage(
                "warning", f"{self.dataset.samples[index].path}: {reason}; left out."
            )
        bad = {i for i, _ in found.problems}
        self.train_idx, self.val_idx = self._split(bad)
        if self.near_duplicates:
            yield TrainMessage(
                "info",
                f"{self.near_duplicates} images are near-duplicates of another; each group was "
                "kept on one side of the split.",
            )

    def _split(self, bad: set[int]) -> tuple[np.ndarray, np.ndarray]:
        from ..data import dataset as datasets

        good = np.array([i for i in range(len(self.labels)) if i not in bad], dtype=int)
        groups = np.arange(len(self.labels)) + len(self.labels)  # problem rows: on their own
        if len(good):
            groups[good] = datasets.near_duplicate_groups(self.features[good])
        self.near_duplicates = near_duplicate_count(np.unique(groups, return_inverse=True)[1])
        split = datasets.split(
            self.dataset,
            self.config.val_fraction,
            self.config.seed,
            groups=[int(g) for g in groups],
        )
        train_idx = np.array([i for i in split.train if i not in bad], dtype=int)
        val_idx = np.array([i for i in split.val if i not in bad], dtype=int)
        if not len(train_idx) or not len(val_idx):
            raise DatasetError("There are too few images to keep some for validation.")
        return train_idx, val_idx

    # ------------------------------------------------------------------ head
    def fit_head(self):
        config, n = self.config, len(self.classes)
        yield TrainPhase("head", f"Fitting a new head for {n} classes…")
        meter = None
        x, y = self.features[self.train_idx], self.labels[self.train_idx]
        job = heads.fit(x, y, n, config, self.spec.dropout, self.cancel)
        while True:
            try:
                step, steps, loss = next(job)
            except StopIteration as stop:
                self.head = stop.value
                break
            meter = meter or RateMeter(steps, "steps")
            yield TrainBatch(0, meter.progress(step, f"Head: step {step}"), loss)
        self.val_logits = self.head.logits(self.features[self.val_idx])
        self.head_epoch = self._epoch(0, "head", self.head.logits(x), self.val_logits)
        self.history.append(self.head_epoch)
        yield self.head_epoch
        self.model = network.with_new_head(
            self.spec, self.pretrained, self.head.weight, self.head.bias
        )

    def _epoch(self, epoch: int, phase: str, train_logits, val_logits) -> TrainEpoch:
        y_train, y_val = self.labels[self.train_idx], self.labels[self.val_idx]
        p_train, p_val = softmax(train_logits), softmax(val_logits)
        return TrainEpoch(
            epoch,
            phase,
            log_loss(y_train, p_train),
            float((p_train.argmax(1) == y_train).mean()),
            log_loss(y_val, p_val),
            float((p_val.argmax(1) == y_val).mean()),
        )

    # ------------------------------------------------------------------ fine-tune
    def finetune(self):
        from . import finetune

        yield TrainPhase("finetune", "Fine-tuning the last stages of the network…")
        samples = self.dataset.samples
        # The convex head is as sure as its training set allows; divided by its
        # out-of-fold temperature it starts phase 2 with sane logits instead of losses
        # in the tens that wreck the backbone in the first steps.
        t = calib.fit_temperature(self.oof_logits, self.labels[self.oof_rows])
        start = network.with_new_head(
            self.spec, self.pretrained, self.head.weight / t, self.head.bias / t
        )
        outcome = yield from finetune.finetune(
            self.spec,
            start,
            [samples[i] for i in self.train_idx],
            [samples[i] for i in self.val_idx],
            self.config,
            self.device,
            self.head_epoch,
            self.cancel,
        )
        self.history.extend(outcome.history)
        if outcome.model is None:
            yield TrainMessage("info", outcome.note)
            return
        yield TrainMessage("info", outcome.note)
        self.model, self.val_logits, self.kept = outcome.model, outcome.val_logits, "finetune"
        self.calibration_source = "validation"

    # ------------------------------------------------------------------ checks, calibration
    def checks(self):
        yield TrainPhase("checks", "Looking for images that may be mislabelled…")
        rows = np.concatenate([self.train_idx, self.val_idx])
        self.oof_rows = rows
        self.oof_logits = yield from label_issues.out_of_fold_logits(
            self.features[rows],
            self.labels[rows],
            len(self.classes),
            self.config,
            self.spec.dropout,
            self.cancel,
        )
        found = label_issues.find_issues(
            self.labels[rows], softmax(self.oof_logits), self.config.max_label_issues
        )
        val = set(self.val_idx.tolist())
        self.issues = tuple(
            {
                "path": self.dataset.samples[rows[i["index"]]].path,
                "given": i["given"],
                "suggested": i["suggested"],
                "score": i["score"],
                "split": "val" if rows[i["index"]] in val else "train",
            }
            for i in found
        )
        if self.issues:
            yield TrainMessage("info", f"{len(self.issues)} images may be mislabelled.")

    def calibrate(self):
        yield TrainPhase("calibrate", "Calibrating confidence…")
        self.cancel.raise_if_cancelled()
        if self.calibration_source == "validation":
            # The fine-tuned network has no out-of-fold logits; its validation set is
            # the only data it did not train on.
            self.calibration = calib.calibrate(self.val_logits, self.labels[self.val_idx])
        else:
            self.calibration = calib.calibrate(self.oof_logits, self.labels[self.oof_rows])

    def result(self) -> TrainResult:
        t, threshold = self.calibration["temperature"], self.calibration["threshold"]
        y_val = self.labels[self.val_idx]
        p_val = softmax(self.val_logits, t)
        flagged, avoided = calib.flag_report(p_val, y_val, threshold)
        paths = [self.dataset.samples[i].path for i in self.val_idx]
        report = classification_report(y_val, p_val, self.classes, paths)
        return TrainResult(
            config=self.config,
            classes=self.classes,
            accuracy=report["accuracy"],
            baseline=report["baseline"],
            per_class=report["per_class"],
            confusion=report["confusion"],
            val_predictions=report["predictions"],
            label_issues=self.issues,
            temperature=t,
            ece_before=self.calibration["ece_before"],
            ece_after=self.calibration["ece_after"],
            unknown_threshold=threshold,
            unknown_flagged=flagged,
            unknown_errors_avoided=avoided,
            near_duplicates=self.near_duplicates,
            history=tuple(self.history),
            state_dict=network.cpu_state_dict(self.model),
            kept_phase=self.kept,
            train_size=len(self.train_idx),
            val_size=len(self.val_idx),
            seconds=time.monotonic() - self.started,
        )
