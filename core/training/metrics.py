"""Classification metrics from true labels and predicted probabilities, as plain data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MOST_CONFUSED = 5


def classification_report(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    files: Sequence[str],
    majority_class: int | None = None,
) -> dict:
    """Top-1, the majority-class baseline, macro-F1, per-class precision/recall/F1/support,
    the confusion matrix (rows: true class), the most-confused pairs and the misclassified
    files with their scores. ``majority_class``: the baseline's guess (default: the most
    frequent class in ``y_true``; pass the training set's)."""
    n = len(classes)
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    if majority_class is None:
        majority_class = int(np.bincount(y_true, minlength=n).argmax())
    per_class = []
    for index, label in enumerate(classes):
        true_positive = confusion[index, index]
        predicted, actual = confusion[:, index].sum(), confusion[index].sum()
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            {
                "class": label,
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "support": int(actual),
            }
        )
    supported = [row["f1"] for row in per_class if row["support"]]
    pairs = [
        {"true": classes[t], "predicted": classes[p], "count": int(confusion[t, p])}
        for t in range(n)
        for p in range(n)
        if t != p and confusion[t, p]
    ]
    pairs.sort(key=lambda pair: -pair["count"])
    misclassified = [
        {
            "file": files[i],
            "true": classes[y_true[i]],
            "predicted": classes[y_pred[i]],
            "score": float(probabilities[i, y_pred[i]]),
            "true_score": float(probabilities[i, y_true[i]]),
        }
        for i in np.flatnonzero(y_pred != y_true)
    ]
    misclassified.sort(key=lambda row: -row["score"])
    return {
        "images": len(y_true),
        "top1": float(np.mean(y_pred == y_true)) if len(y_true) else 0.0,
        "baseline_top1": float(np.mean(y_true == majority_class)) if len(y_true) else 0.0,
        "baseline_class": classes[majority_class],
        "macro_f1": float(np.mean(supported)) if supported else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "most_confused": pairs[:MOST_CONFUSED],
        "misclassified": misclassified,
    }
