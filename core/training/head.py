"""Training the head (dropout, then a dense softmax layer) on cached features, in NumPy.

The head is a linear layer on a few thousand feature vectors: NumPy trains it in a fraction
of a second, with the arithmetic of Keras's ``Dropout`` + ``Dense(softmax)`` +
``Adam`` + ``sparse_categorical_crossentropy`` (Glorot-uniform kernel, zero bias,
epsilon 1e-7), and without starting TensorFlow, so a re-run on cached features needs none.
Everything random (initialisation, shuffling, dropout) comes from one generator seeded with
``seed``: the same features and seed give the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from zoo.base.errors import ZooError
from zoo.runtime.scores import softmax

EPSILON = 1e-7


@dataclass(frozen=True)
class HeadSettings:
    """What the head's training loop needs of ``TrainSettings`` (where the defaults are)."""

    epochs: int
    learning_rate: float
    batch_size: int
    dropout: float
    patience: int | None
    """Stop when the validation loss has not improved for this many epochs (None: never)."""
    class_weight: str | None
    """None, or "balanced": each class weighs n_samples / (n_classes * n_class_samples)."""
    seed: int


@dataclass
class HeadResult:
    kernel: np.ndarray
    bias: np.ndarray
    history: list[dict] = field(default_factory=list)
    """Per epoch: loss, accuracy, val_loss, val_accuracy."""
    best_epoch: int = 1
    """The epoch (from 1) with the lowest validation loss, whose weights are kept."""


def class_weights(labels: np.ndarray, classes: int, mode: str | None) -> np.ndarray:
    if mode is None:
        return np.ones(classes, np.float32)
    if mode != "balanced":
        raise ValueError(f"class_weight must be 'balanced' or None, not {mode!r}")
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return (len(labels) / (classes * np.maximum(counts, 1))).astype(np.float32)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    picked = probabilities[np.arange(len(labels)), labels]
    return -np.log(np.clip(picked, EPSILON, 1.0))


def train_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    classes: int,
    settings: HeadSettings,
    on_epoch: Callable[[dict], None] = lambda record: None,
) -> HeadResult:
    """The head trained on ``x_train``: the epoch with the lowest validation loss is kept.
    Without validation features (``x_val`` None: a refit on every image), every epoch runs
    and the last is kept."""
    rng = np.random.default_rng(settings.seed)
    features = x_train.shape[1]
    limit = np.sqrt(6.0 / (features + classes))
    kernel = rng.uniform(-limit, limit, (features, classes)).astype(np.float32)
    bias = np.zeros(classes, np.float32)
    weights = class_weights(y_train, classes, settings.class_weight)
    adam = _Adam(settings.learning_rate, (kernel, bias))
    best = HeadResult(kernel.copy(), bias.copy())
    best_loss, waited = np.inf, 0
    for epoch in range(1, settings.epochs + 1):
        with np.errstate(all="ignore"):  # overflow shows as a non-finite loss, checked below
            metrics = _epoch(
                x_train, y_train, x_val, y_val, kernel, bias, adam, weights, rng, settings
            )
        record = {"epoch": epoch, **metrics}
        _require_finite(record, kernel, settings)
        best.history.append(record)
        on_epoch(record)
        if x_val is None:
            best.kernel, best.bias, best.best_epoch = kernel, bias, epoch
        elif record["val_loss"] < best_loss:
            best_loss, waited = record["val_loss"], 0
            best.kernel, best.bias, best.best_epoch = kernel.copy(), bias.copy(), epoch
        else:
            waited += 1
            if settings.patience is not None and waited >= settings.patience:
                break
    return best


def _epoch(x_train, y_train, x_val, y_val, kernel, bias, adam, weights, rng, settings) -> dict:
    """One pass over the training features (kernel and bias updated in place); its metrics."""
    keep = 1.0 - settings.dropout
    order = rng.permutation(len(x_train))
    total_loss = correct = 0.0
    for start in range(0, len(order), settings.batch_size):
        index = order[start : start + settings.batch_size]
        x, y = x_train[index], y_train[index]
        if settings.dropout:
            x = x * (rng.random(x.shape, dtype=np.float32) < keep) / np.float32(keep)
        probabilities = softmax(x @ kernel + bias, np.float32)
        sample_weight = weights[y]
        total_loss += float(np.sum(cross_entropy(probabilities, y) * sample_weight))
        correct += float(np.sum(probabilities.argmax(axis=1) == y))
        gradient = probabilities
        gradient[np.arange(len(y)), y] -= 1.0
        gradient *= (sample_weight / len(y))[:, None]
        adam.step((x.T @ gradient, gradient.sum(axis=0)))
    metrics = {"loss": total_loss / len(x_train), "accuracy": correct / len(x_train)}
    if x_val is not None:
        val_probabilities = softmax(x_val @ kernel + bias, np.float32)
        metrics["val_loss"] = float(np.mean(cross_entropy(val_probabilities, y_val)))
        metrics["val_accuracy"] = float(np.mean(val_probabilities.argmax(axis=1) == y_val))
    return metrics


class TrainingDiverged(ZooError):
    """The loss or the weights stopped being finite numbers."""


def _require_finite(record: dict, kernel: np.ndarray, settings: HeadSettings) -> None:
    losses = [record[key] for key in ("loss", "val_loss") if key in record]
    if all(np.isfinite(losses)) and np.isfinite(kernel).all():
        return
    problems = [f"the loss is {value}" for value in losses if not np.isfinite(value)]
    bad = problems[0] if problems else "its weights are not finite"
    raise TrainingDiverged(
        f"training diverged: {bad} at epoch {record['epoch']}; nothing was saved. "
        f"Try a lower --learning-rate (now {settings.learning_rate:g}), or check the images"
    )


class _Adam:
    """Keras's Adam, in place on the given arrays."""

    def __init__(self, learning_rate: float, parameters: tuple[np.ndarray, ...]):
        self.learning_rate = learning_rate
        self.parameters = parameters
        self.m = [np.zeros_like(p) for p in parameters]
        self.v = [np.zeros_like(p) for p in parameters]
        self.t = 0

    def step(self, gradients: tuple[np.ndarray, ...], beta1=0.9, beta2=0.999) -> None:
        self.t += 1
        rate = self.learning_rate * np.sqrt(1 - beta2**self.t) / (1 - beta1**self.t)
        for p, g, m, v in zip(self.parameters, gradients, self.m, self.v, strict=True):
            m += (1 - beta1) * (g - m)
            v += (1 - beta2) * (np.square(g) - v)
            p -= (rate * m / (np.sqrt(v) + EPSILON)).astype(p.dtype)
