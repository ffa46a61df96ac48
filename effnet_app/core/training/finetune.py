"""Phase 2 of "Thorough" training: the last stages of the backbone learn too.

Starts from the network with the phase-1 head. Images are decoded once (``decoded.py``);
each epoch draws random resized crops and flips of them (``torchvision.transforms.v2``).
BatchNorm layers stay in eval mode (their running statistics frozen: on a small set,
batch statistics wreck the pretrained ones), their affine parameters train. AdamW with
lower learning rates for earlier blocks, label smoothing, warm-up then cosine schedule; the epoch with
the lowest validation loss is kept, with early stopping. If that epoch does not beat the
phase-1 head on validation, the head is kept instead and the note says so.

On CUDA it runs under autocast (bfloat16 where supported, else float16 with a
GradScaler); out of memory, a batch is split into halves whose gradients add up to the
same step, and the smaller size holds for the rest of the run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..jobs import NEVER, CancelToken, RateMeter
from ..runtime.torch_backend import is_out_of_memory
from .config import TrainBatch, TrainEpoch, TrainMessage
from .decoded import decode_all

LAYER_DECAY = 0.75  # each block further from the head learns at 0.75 x the one above it
FLIP_MAX_LOSS = 0.05  # mirrored training images may cost the head this much accuracy
HEAD_LR_FACTOR = 2.0  # the head (already fitted) learns at 2 x lr_backbone
# Random crops keep at least this share of the image (at 35 %, crops and flips together
# left a fitted head recognising 41 % of 100 digits it knew).
CROP_MIN_AREA = 0.6


@dataclass
class Outcome:
    model: object | None  # the fine-tuned network, or None when phase 1 was kept
    val_logits: np.ndarray | None
    history: list
    note: str


def _freeze_bn(model) -> None:
    """BatchNorm statistics frozen and stochastic depth off; the head's dropout stays on.

    Measured on 100 digits with a head fitted on eval-mode features: stochastic depth
    alone took its accuracy from 100 % to 67 % before a single step.
    """
    from torch import nn
    from torchvision.ops import StochasticDepth

    for module in model.modules():
        if isinstance(module, (nn.modules.batchnorm._BatchNorm, StochasticDepth)):
            module.eval()


def param_groups(model, config) -> list[dict]:
    """Learning rates per block: head, then the unfrozen blocks from the top down."""
    blocks = list(model.features.children())
    count = (
        len(blocks) if config.finetune_stages <= 0 else min(len(blocks), config.finetune_stages + 1)
    )
    for p in model.parameters():
        p.requires_grad_(False)
    groups = []
    named = [(HEAD_LR_FACTOR, model.classifier)]
    named += [(LAYER_DECAY**d, blocks[-1 - d]) for d in range(count)]
    for factor, module in named:
        decay, plain = [], []
        for p in module.parameters():
            p.requires_grad_(True)
            (decay if p.ndim > 1 else plain).append(p)
        lr = config.lr_backbone * factor
        groups.append({"params": decay, "lr": lr, "weight_decay": config.weight_decay})
        groups.append({"params": plain, "lr": lr, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


class _Trainer:
    def __init__(self, spec, model, config, device: str) -> None:
        import torch

        self.spec, self.config, self.device = spec, config, device
        self.model = model.to(device)
        self.cuda = device.startswith("cuda")
        self.amp = None
        if self.cuda:
            self.amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp is torch.float16)
        self.optimiser = torch.optim.AdamW(param_groups(self.model, config))
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.micro = config.batch_size or (32 if self.cuda else 16)
        self.notes: list[str] = []
        self.history: list[TrainEpoch] = []
        self.train_tf, self.val_tf = _transforms(spec.preprocess, config.augment)

    def autocast(self):
        import torch

        return torch.autocast("cuda", dtype=self.amp, enabled=self.amp is not None)

    def step(self, x, y) -> tuple[float, int]:
        """One optimiser step on the batch, in micro-batches that fit: (loss, correct)."""
        while True:
            try:
                return self._accumulate(x, y)
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc) or self.micro == 1:
                    if is_out_of_memory(exc):
                        raise ModelError(
                            f"Fine-tuning {self.spec.name} does not fit in the memory of "
                            f"{self.device}, even one image at a time. Use head mode or "
                            "another device.",
                            detail=repr(exc),
                        ) from exc
                    raise
                self.micro = max(1, self.micro // 2)
                self.optimiser.zero_grad(set_to_none=True)
                if self.cuda:
                    import torch

                    torch.cuda.empty_cache()
                self.notes.append(
                    f"Out of memory on {self.device}: batch size lowered to {self.micro}."
                )

    def _accumulate(self, x, y) -> tuple[float, int]:
        self.optimiser.zero_grad(set_to_none=True)
        total, correct = 0.0, 0
        for start in range(0, len(x), self.micro):
            xb = x[start : start + self.micro].to(self.device, non_blocking=True)
            yb = y[start : start + self.micro].to(self.device)
            with self.autocast():
                out = self.model(xb)
                loss = self.loss_fn(out, yb) * (len(xb) / len(x))
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
            correct += int((out.detach().argmax(1) == yb).sum())
        self.scaler.step(self.optimiser)
        self.scaler.update()
        return total, correct

    def logits(self, store, rows: Sequence[int], flip: bool = False) -> np.ndarray:
        import torch

        self.model.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(rows), self.micro):
                chosen = rows[start : start + self.micro]
                batch = torch.stack([self.val_tf(store[i]) for i in chosen])
                if flip:
                    batch = torch.flip(batch, dims=[-1])
                with self.autocast():
                    out.append(self.model(batch.to(self.device)).float().cpu())
        return torch.cat(out).numpy().astype(np.float64)


def _flip_invariant(trainer, store, rows, labels) -> bool:
    """Whether the phase-1 network knows mirrored training images about as well.

    Training images, not validation ones, so validation stays out of every choice.
    """
    rows = rows[:: max(1, len(rows) // 200)]
    y = labels[rows]
    plain = (trainer.logits(store, rows).argmax(1) == y).mean()
    mirrored = (trainer.logits(store, rows, flip=True).argmax(1) == y).mean()
    return bool(mirrored >= plain - FLIP_MAX_LOSS)


def _transforms(preprocess, augment: bool, flip: bool = True):
    import torch
    from torchvision.transforms import InterpolationMode, v2

    mode = InterpolationMode(preprocess.interpolation)
    crop = preprocess.crop_size
    normalise = v2.Compose(
        [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(preprocess.mean), list(preprocess.std)),
        ]
    )
    val = v2.Compose([v2.CenterCrop(crop), normalise])
    if not augment:
        train = val
    else:
        train = v2.Compose(
            [
                v2.RandomResizedCrop(
                    crop, scale=(CROP_MIN_AREA, 1.0), interpolation=mode, antialias=True
                ),
                *([v2.RandomHorizontalFlip()] if flip else []),
                normalise,
            ]
        )
    return (lambda a: train(torch.from_numpy(a))), (lambda a: val(torch.from_numpy(a)))


def finetune(
    spec,
    model,
    train_samples,
    val_samples,
    config,
    device: str,
    head_epoch: TrainEpoch,
    cancel: CancelToken = NEVER,
) -> Generator[object, None, Outcome]:
    """Job: fine-tune a copy of ``model``; its ``Outcome`` says whether it beat the head."""
    import torch

    torch.manual_seed(int(config.seed))
    files = [s.path for s in (*train_samples, *val_samples)]
    store = yield from decode_all(spec.preprocess, files, config.memory_budget_mb << 20, cancel)
    try:
        if store.on_disk:
            yield TrainMessage("info", "The images do not all fit in memory; some wait on disk.")
        n_train = len(train_samples)
        rows = [i for i in range(n_train) if i not in store.problems]
        val_rows = [i for i in range(n_train, len(files)) if i not in store.problems]
        labels = np.array([s.label for s in (*train_samples, *val_samples)], dtype=int)
        trainer = _Trainer(spec, copy.deepcopy(model), config, device)
        if config.augment and not _flip_invariant(trainer, store, rows, labels):
            trainer.train_tf = _transforms(spec.preprocess, True, flip=False)[0]
            yield TrainMessage("info", "Mirrored images confuse these classes: no flips.")
        best = yield from _epochs(trainer, store, rows, val_rows, labels, cancel)
    finally:
        store.close()
    return _verdict(trainer, best, head_epoch)


def warmup_cosine(steps: int):
    """Linear warm-up over the first fifth of the steps (at most an epoch's), then cosine.

    Adam's first steps move every weight by about the full learning rate whatever its
    gradient; without a warm-up they knocked a fitted head's training accuracy down.
    """
    warm = max(1, steps // 5)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    return factor


def _epochs(trainer, store, rows, val_rows, labels, cancel):
    """Train up to ``epochs`` epochs; returns (val loss, val acc, state, val logits) of the best."""
    import torch

    config = trainer.config
    per_epoch = max(1, math.ceil(len(rows) / trainer.micro))
    size = trainer.micro
    steps = per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(trainer.optimiser, warmup_cosine(steps))
    meter, done, best, stale = RateMeter(steps, "batches"), 0, None, 0
    gen = torch.Generator().manual_seed(int(config.seed))
    y_all = torch.as_tensor(labels)
    for epoch in range(1, config.epochs + 1):
        trainer.model.train()
        _freeze_bn(trainer.model)
        order = [rows[i] for i in torch.randperm(len(rows), generator=gen).tolist()]
        losses, hits = [], 0
        for start in range(0, len(order), size):
            cancel.raise_if_cancelled()
            chosen = order[start : start + size]
            x = torch.stack([trainer.train_tf(store[i]) for i in chosen])
            loss, correct = trainer.step(x, y_all[chosen])
            losses.append(loss)
            hits += correct
            schedule.step()
            done += 1
            for note in trainer.notes:
                yield TrainMessage("warning", note)
            trainer.notes.clear()
            yield TrainBatch(
                epoch, meter.progress(done, f"Epoch {epoch}, batch {done}"), losses[-1]
            )
        logits = trainer.logits(store, val_rows)
        epoch_row = _epoch_row(epoch, losses, hits / max(1, len(order)), logits, labels[val_rows])
        trainer.history.append(epoch_row)
        yield epoch_row
        if best is None or epoch_row.val_loss < best[0]:
            state = {
                k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()
            }
            best, stale = (epoch_row.val_loss, epoch_row.val_acc, state, logits), 0
        else:
            stale += 1
            if stale >= config.patience:
                yield TrainMessage(
                    "info", f"No better validation loss for {stale} epochs: stopped."
                )
                break
    return best


def _epoch_row(epoch: int, losses, train_acc: float, logits, y_val) -> TrainEpoch:
    from .metrics import log_loss, softmax

    p = softmax(logits)
    acc = float((p.argmax(1) == y_val).mean()) if len(y_val) else 0.0
    # train loss and accuracy are on the augmented crops, with label smoothing
    return TrainEpoch(epoch, "finetune", float(np.mean(losses)), train_acc, log_loss(y_val, p), acc)


def _verdict(trainer, best, head_epoch: TrainEpoch) -> Outcome:
    history = trainer.history
    if best is None:
        return Outcome(None, None, history, "Fine-tuning ran no epoch; the quick head was kept.")
    loss, acc, state, logits = best
    beats = acc > head_epoch.val_acc or (acc == head_epoch.val_acc and loss < head_epoch.val_loss)
    figures = (
        f"validation accuracy {acc:.1%} and loss {loss:.3f} against the head's "
        f"{head_epoch.val_acc:.1%} and {head_epoch.val_loss:.3f}"
    )
    if not beats:
        return Outcome(
            None,
            None,
            history,
            f"Fine-tuning did not beat the quick head ({figures}); the head was kept.",
        )
    model = trainer.model.to("cpu")
    model.load_state_dict(state)
    return Outcome(model.eval(), logits, history, f"Fine-tuning kept: {figures}.")
