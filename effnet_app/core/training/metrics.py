"""Classification metrics (scikit-learn) from labels and predicted probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def baseline(labels: Sequence[int]) -> float:
    """Accuracy of always guessing the biggest class."""
    labels = np.asarray(labels)
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def classification_report(
    labels: Sequence[int], probabilities: np.ndarray, classes: Sequence[str], paths: Sequence
) -> dict:
    """accuracy, baseline, per_class, confusion, predictions: the fields results share."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, int)
    every = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=every, zero_division=0
    )
    per_class = tuple(
        {"name": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    )
    confusion = confusion_matrix(labels, predicted, labels=every) if len(labels) else None
    rows = tuple(
        {
            "path": path,
            "label": int(label),
            "predicted": int(guess),
            "probabilities": [float(v) for v in probs],
        }
        for path, label, guess, probs in zip(paths, labels, predicted, probabilities, strict=True)
    )
    return {
        "accuracy": float(accuracy_score(labels, predicted)) if len(labels) else 0.0,
        "baseline": baseline(labels),
        "per_class": per_class,
        "confusion": tuple(tuple(int(v) for v in row) for row in confusion)
        if confusion is not None
        else tuple(tuple(0 for _ in every) for _ in every),
        "predictions": rows,
    }


def log_loss(labels: Sequence[int], probabilities: np.ndarray) -> float:
    p = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean()) if len(labels) else 0.0
