"""A new classifier head on frozen pooled features.

Two solvers, both on features standardised per dimension (the scaling is folded back into
the Linear layer, so the head runs on the raw pooled features the network produces):

- ``lbfgs``: multinomial logistic regression with an L2 penalty, solved with L-BFGS in
  float64 from zeros. Convex, so the answer does not depend on a seed: the same problem
  scikit-learn's ``LogisticRegression(C=c)`` solves (mean log loss + |W|^2 / (2 C n)).
- ``adamw``: the head as a network layer (the variant's dropout on its input, label
  smoothing), trained for ``epochs`` with AdamW on mini-batches; seeded.

Each fit is a generator that yields ``(step, steps, loss)`` and returns a ``Head``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..jobs import NEVER, CancelToken, run_to_end

LBFGS_ITER_PER_STEP = 20
LBFGS_MAX_STEPS = 50


@dataclass(frozen=True)
class Head:
    weight: np.ndarray  # (classes, D), on raw pooled features
    bias: np.ndarray  # (classes,)

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        return x @ self.weight.astype(np.float64).T + self.bias.astype(np.float64)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-6, std, 1.0)


def _fold_back(w: np.ndarray, b: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Head:
    weight = w / std
    return Head(weight.astype(np.float32), (b - weight @ mean).astype(np.float32))


def fit(x, y, num_classes: int, config, dropout: float = 0.0, cancel: CancelToken = NEVER):
    """Job: the head for ``config.head_solver``; yields (step, steps, loss)."""
    if config.head_solver == "adamw":
        return (yield from fit_adamw(x, y, num_classes, config, dropout, cancel))
    return (yield from fit_lbfgs(x, y, num_classes, config.head_c, cancel))


def fit_lbfgs(x, y, num_classes: int, c: float = 1.0, cancel: CancelToken = NEVER):
    import torch

    x = np.asarray(x, dtype=np.float64)
    mean, std = _standardise(x)
    z = torch.from_numpy((x - mean) / std)
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    w = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    penalty = 1.0 / (2.0 * c * len(z))
    solver = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=LBFGS_ITER_PER_STEP,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-8,
        tolerance_change=1e-12,
    )

    def closure():
        solver.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w.T + b, target) + penalty * (w * w).sum()
        loss.backward()
        return loss

    previous = float("inf")
    for step in range(LBFGS_MAX_STEPS):
        cancel.raise_if_cancelled()
        loss = float(solver.step(closure).detach())
        yield step + 1, LBFGS_MAX_STEPS, loss
        if previous - loss < 1e-10 * max(1.0, abs(loss)):
            break
        previous = loss
    return _fold_back(w.detach().numpy(), b.detach().numpy(), mean, std)


def fit_adamw(x, y, num_classes: int, config, dropout: float = 0.0, cancel: CancelToken = NEVER):
    import torch
    from torch import nn

    x = np.asarray(x, dtype=np.float32)
    mean, std = _standardise(x.astype(np.float64))
    # Scaled by 1/sqrt(D) too, so a step of lr_head moves a logit by about lr_head x sqrt(D)
    # rather than lr_head x D: the same lr suits every feature width.
    std = std * np.sqrt(x.shape[1])
    z = torch.from_numpy(((x - mean) / std).astype(np.float32))
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    gen = torch.Generator().manual_seed(int(config.seed))
    layer = nn.Linear(z.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.normal_(0.0, 0.01, generator=gen)
        layer.bias.zero_()
    head = nn.Sequential(nn.Dropout(dropout), layer)
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=config.lr_head, weight_decay=config.weight_decay
    )
    batch = config.batch_size or 64
    per_epoch = max(1, -(-len(z) // batch))
    steps = per_epoch * max(1, config.epochs)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    head.train()
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(z), generator=gen)
        cancel.raise_if_cancelled()
        chosen = order[(step % per_epoch) * batch : (step % per_epoch + 1) * batch]
        optimiser.zero_grad()
        loss = loss_fn(head(z[chosen]), target[chosen])
        loss.backward()
        optimiser.step()
        schedule.step()
        yield step + 1, steps, float(loss.detach())
    weight = layer.weight.detach().double().numpy()
    return _fold_back(weight, layer.bias.detach().double().numpy(), mean, std)


def fit_quietly(x, y, num_classes: int, config, dropout: float = 0.0, cancel=NEVER) -> Head:
    """``fit`` without its progress (out-of-fold fits)."""
    return run_to_end(fit(x, y, num_classes, config, dropout, cancel))
