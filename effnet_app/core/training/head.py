"""A new classifier head on frozen pooled features.

Two solvers, both on features standardised per dimension (the scaling is folded back into
the Linear layer, so the head runs on the raw pooled features the network produces):

- ``lbfgs``: multinomial logistic regression with an L2 penalty, solved with L-BFGS in
  float64 from zeros (scipy). Convex, so the answer does not depend on a seed: the same problem
  scikit-learn's ``LogisticRegression(C=c)`` solves (mean log loss + |W|^2 / (2 C n)).
- ``adamw``: the head as a network layer (the variant's dropout on its input, label
  smoothing), trained for ``epochs`` with AdamW on mini-batches; seeded.

Each fit is a generator that yields ``(step, steps, loss)`` and returns a ``Head``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..jobs import NEVER, CancelToken, run_to_end

LBFGS_ITER_PER_STEP = 100  # a restart forgets the curvature: most fits end in one piece
LBFGS_MAX_STEPS = 10
SMALL_PROBLEM = 4_000_000  # feature values (images x width) fitted on one BLAS thread


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
    """L-BFGS (scipy's L-BFGS-B, no bounds) on the exact loss and gradient, in numpy.

    Run in pieces of ``LBFGS_ITER_PER_STEP`` iterations, each restarted where the last
    ended, so a long fit reports progress; a cancel lands within one iteration.
    """
    x = np.asarray(x, dtype=np.float64)
    mean, std = _standardise(x)
    z = (x - mean) / std
    n, d = z.shape
    onehot = np.eye(num_classes)[np.asarray(y, dtype=int)]
    penalty = 1.0 / (2.0 * c * n)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: num_classes * d].reshape(num_classes, d), theta[num_classes * d :]
        logits = z @ w.T + b
        # Shifted so the largest is 0 (no overflow), and floored far below anything that
        # counts (exp() never goes subnormal).
        logits = np.maximum(logits - logits.max(axis=1, keepdims=True), -300.0)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -(onehot * log_p).sum() / n + penalty * (w * w).sum()
        delta = (np.exp(log_p) - onehot) / n
        grad_w = delta.T @ z + 2.0 * penalty * w
        return float(loss), np.concatenate([grad_w.ravel(), delta.sum(axis=0)])

    theta = np.zeros(num_classes * (d + 1))
    with _blas_threads(z.size):
        return (yield from _lbfgs_pieces(loss_and_grad, theta, num_classes, d, mean, std, cancel))


def _blas_threads(size: int):
    """One BLAS thread for small problems: waking more costs ~8x the sums themselves."""
    from contextlib import nullcontext

    if size > SMALL_PROBLEM:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _lbfgs_pieces(loss_and_grad, theta, num_classes, d, mean, std, cancel):
    from scipy.optimize import minimize

    for step in range(LBFGS_MAX_STEPS):
        cancel.raise_if_cancelled()
        found = minimize(
            loss_and_grad,
            theta,
            jac=True,
            method="L-BFGS-B",
            callback=lambda _: cancel.raise_if_cancelled(),
            options={"maxiter": LBFGS_ITER_PER_STEP, "maxcor": 20, "gtol": 1e-8, "ftol": 1e-12},
        )
        theta = found.x
        yield step + 1, LBFGS_MAX_STEPS, float(found.fun)
        if found.nit < LBFGS_ITER_PER_STEP:  # converged (or cannot improve) before the cap
            break
    w, b = theta[: num_classes * d].reshape(num_classes, d), theta[num_classes * d :]
    return _fold_back(w, b, mean, std)


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
