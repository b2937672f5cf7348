"""Fine-tune mode: after the head has converged on cached features, unfreeze the base's top
layers and train on at a low learning rate (the Keras transfer-learning guide's recipe).

Batch normalisation layers stay frozen, which in Keras 3 also runs them in inference mode:
updating their statistics on a small dataset is the recipe's known pitfall (it wrecks what the
head learned). Images are decoded once, kept as uint8, and preprocessed batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import interrupts
from ..keras_model import import_keras
from ..pipeline import decoded_batches
from ..preprocessing import preprocess
from ..progress import progress_bar, status
from .base import Base
from .dataset import Dataset
from .head import HeadResult, HeadSettings, class_weights
from .network import HEAD_LAYER, build_base, classifier
from .settings import FinetuneSettings


@dataclass
class Finetuned:
    base_weights: Path
    """The base's weights after fine-tuning (a Keras ``.weights.h5`` file)."""
    kernel: np.ndarray
    bias: np.ndarray
    history: list[dict]
    probabilities: dict[str, np.ndarray]
    """split -> probabilities of its images (val, and test when there is one)."""


def finetune(
    base: Base,
    dataset: Dataset,
    head: HeadResult,
    settings: HeadSettings,
    tuning: FinetuneSettings,
    name: str,
    folder: Path,
    epoch_offset: int,
    on_epoch=None,
) -> Finetuned:
    """From the trained ``head``, unfreeze the top ``tuning.unfreeze`` weighted layers of the
    base and train on; the base's weights are saved in ``folder``. ``settings``: the head's
    (dropout, batch size, patience, class weights, seed), which fine-tuning keeps."""
    keras = import_keras()
    keras.utils.set_random_seed(settings.seed)
    network, layer = build_base(base.spec, base.weights_path)
    model = classifier(network, layer, len(dataset.classes), settings.dropout, name)
    model.get_layer(HEAD_LAYER).set_weights([head.kernel, head.bias])
    backbone = model.layers[: [layer_.name for layer_ in model.layers].index(layer) + 1]
    for layer_ in model.layers:
        layer_.trainable = False
    candidates = [
        layer_
        for layer_ in backbone
        if layer_.weights and not isinstance(layer_, keras.layers.BatchNormalization)
    ]
    unfreeze = tuning.unfreeze
    for layer_ in candidates if unfreeze == "all" else candidates[-unfreeze:]:
        layer_.trainable = True
    model.get_layer(HEAD_LAYER).trainable = True
    model.compile(
        optimizer=keras.optimizers.Adam(tuning.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    index = {label: i for i, label in enumerate(dataset.classes)}
    preprocessing, batch_size = base.input.preprocess, settings.batch_size
    pixels = {
        split: _decode([item.path for item in dataset.split(split)], base)
        for split in ("train", "val", "test")
        if dataset.split(split)
    }
    labels = {
        split: np.array([index[item.label] for item in dataset.split(split)], np.int64)
        for split in pixels
    }
    class_weight = settings.class_weight
    weights_per_class = class_weights(labels["train"], len(dataset.classes), class_weight)
    bar = progress_bar("fine-tuning", tuning.epochs, "epoch")
    best = _keep_best(keras, settings.patience, epoch_offset, on_epoch, bar)
    status(f"fine-tuning the top {len(candidates) if unfreeze == 'all' else unfreeze} layers")
    # Ctrl-C stops fit at a batch's end (and skips the predictions), then raises.
    with interrupts.deferred() as pending:
        model.fit(
            _batches(
                keras, pixels["train"], labels["train"], batch_size, preprocessing, settings.seed
            ),
            validation_data=_batches(
                keras, pixels["val"], labels["val"], batch_size, preprocessing
            ),
            epochs=tuning.epochs,
            class_weight=dict(enumerate(weights_per_class.tolist())) if class_weight else None,
            callbacks=[best, _stop_when(keras, pending)],
            verbose=0,
        )
        bar.close()
        model.set_weights(best.weights)
        probabilities = {
            split: model.predict(
                _batches(keras, pixels[split], labels[split], batch_size, preprocessing), verbose=0
            )
            for split in pixels
            if split != "train" and not pending
        }
    path = folder / "finetuned-base.weights.h5"
    network.save_weights(path)
    kernel, bias = model.get_layer(HEAD_LAYER).get_weights()
    return Finetuned(path, kernel, bias, best.history, probabilities)


def _decode(paths: list[Path], base: Base) -> np.ndarray:
    images = []
    size, interpolation = base.input.size, base.input.interpolation
    for batch in decoded_batches([str(p) for p in paths], size, 64, interpolation):
        images += [decoded.pixels for decoded in batch]  # unreadable files were dropped
    return np.stack(images)


def _batches(keras, pixels, labels, batch_size, preprocessing, seed=None):
    class Batches(keras.utils.PyDataset):
        """uint8 images preprocessed a batch at a time; shuffled each epoch when seeded."""

        def __init__(self):
            super().__init__()
            self.order = np.arange(len(pixels))
            self.rng = np.random.default_rng(seed) if seed is not None else None
            self.on_epoch_end()

        def __len__(self):
            return -(-len(pixels) // batch_size)

        def __getitem__(self, i):
            index = self.order[i * batch_size : (i + 1) * batch_size]
            return preprocess(pixels[index], preprocessing), labels[index]

        def on_epoch_end(self):
            if self.rng is not None:
                self.rng.shuffle(self.order)

    return Batches()


def _stop_when(keras, pending: interrupts.Pending):
    class StopWhenInterrupted(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.stop_training = self.model.stop_training or bool(pending)

        on_test_batch_end = on_train_batch_end

    return StopWhenInterrupted()


def _keep_best(keras, patience, epoch_offset, on_epoch, bar):
    class KeepBest(keras.callbacks.Callback):
        """The weights of the epoch with the lowest validation loss; stops after ``patience``
        epochs without improvement."""

        def __init__(self):
            super().__init__()
            self.best_loss, self.waited, self.weights, self.history = np.inf, 0, None, []

        def on_epoch_end(self, epoch, logs=None):
            record = {
                "epoch": epoch_offset + epoch + 1,
                "loss": float(logs["loss"]),
                "accuracy": float(logs["accuracy"]),
                "val_loss": float(logs["val_loss"]),
                "val_accuracy": float(logs["val_accuracy"]),
                "phase": "finetune",
            }
            self.history.append(record)
            bar.update(1)
            if on_epoch:
                on_epoch(record)
            if record["val_loss"] < self.best_loss or self.weights is None:
                self.best_loss, self.waited = record["val_loss"], 0
                self.weights = self.model.get_weights()
            else:
                self.waited += 1
                if patience is not None and self.waited >= patience:
                    self.model.stop_training = True

    return KeepBest()
