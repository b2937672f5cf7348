"""A classifier's outputs: probabilities, or logits that zoo turns into them."""

from __future__ import annotations

import numpy as np

from zoo.base.errors import NonFiniteScores, PluginError

SUM_TOLERANCE = 1e-3
"""How far from 1 a row of float32 probabilities may sum (fp16 and int8 graphs included)."""


def softmax(logits: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Row-wise softmax, computed in ``dtype``: float64 by default, as float32 loses the small
    probabilities a report prints; training passes float32, where only the gradient counts."""
    logits = logits.astype(dtype, copy=False)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def require_probabilities(outputs: np.ndarray, model: str) -> None:
    """Refuse, in one line, outputs that are not rows of probabilities: NaN or infinity (every
    score, and any JSON holding them, would be meaningless), or logits from a classifier whose
    spec says probabilities (it would print negative "scores")."""
    finite_rows = np.isfinite(outputs).all(axis=-1)
    if not finite_rows.all():
        raise NonFiniteScores(model, int((~finite_rows).sum()), len(finite_rows))
    sums = outputs.sum(axis=-1, dtype=np.float64)
    smallest = float(outputs.min()) if outputs.size else 0.0
    worst = float(sums[np.argmax(np.abs(sums - 1))]) if sums.size else 1.0
    if smallest < -SUM_TOLERANCE or abs(worst - 1) > SUM_TOLERANCE:
        raise PluginError(
            f"model {model!r} outputs logits, not probabilities (a row sums to {worst:.4g}, "
            f"its smallest value is {smallest:.4g}); end the model with a softmax, or declare "
            "output='logits' in its ModelSpec"
        )
