"""Temperature scaling, expected calibration error and the "not sure" threshold.

The temperature T minimises the negative log-likelihood of ``softmax(logits / T)`` over
held-out logits (L-BFGS on log T, so T stays positive). The threshold rule, applied to
calibrated top-1 probabilities of held-out predictions: flag an image when its top-1
probability is below t, choosing the t that maximises (errors flagged - correct
predictions flagged), i.e. flag where a prediction is more often wrong than right,
but never flagging more than ``MAX_CORRECT_LOST`` of the correct predictions; ties go to
the smallest t. A model that is never wrong gets t = 0 (nothing flagged).
"""

from __future__ import annotations

import numpy as np

from .metrics import softmax

ECE_BINS = 15
MAX_CORRECT_LOST = 0.10
T_RANGE = (0.05, 20.0)


def fit_temperature(logits: np.ndarray, labels) -> float:
    import torch

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(z) == 0:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS(
        [log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe", tolerance_change=1e-12
    )

    def closure():
        solver.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    solver.step(closure)
    t = float(log_t.detach().exp())
    return float(np.clip(t, *T_RANGE)) if np.isfinite(t) else 1.0


def expected_calibration_error(probabilities: np.ndarray, labels, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of |accuracy - confidence| x share of images."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 0.0
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    correct = (predicted == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def choose_threshold(probabilities: np.ndarray, labels) -> float:
    """The "not sure" threshold on top-1 probability (see the module docstring)."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 0.0
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    seen = np.unique(confidence)
    candidates = np.concatenate([[0.0], (seen[:-1] + seen[1:]) / 2.0])  # between two images
    allowed = MAX_CORRECT_LOST * correct.sum()
    best, best_gain = 0.0, 0
    for t in candidates:  # flags confidence < t
        flagged = confidence < t
        lost = int((flagged & correct).sum())
        if lost > allowed:
            break  # lost only grows with t
        gain = int((flagged & ~correct).sum()) - lost
        if gain > best_gain:
            best, best_gain = float(t), gain
    return best


def flag_report(probabilities: np.ndarray, labels, threshold: float) -> tuple[float, int]:
    """(fraction flagged, wrong predictions among the flagged) at ``threshold``."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 0.0, 0
    flagged = p.max(axis=1) < threshold
    wrong = p.argmax(axis=1) != labels
    return float(flagged.mean()), int((flagged & wrong).sum())


def calibrate(logits: np.ndarray, labels) -> dict:
    """temperature, ece_before, ece_after, threshold from held-out logits."""
    t = fit_temperature(logits, labels)
    calibrated = softmax(logits, t)
    return {
        "temperature": t,
        "ece_before": expected_calibration_error(softmax(logits), labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "threshold": choose_threshold(calibrated, labels),
    }
