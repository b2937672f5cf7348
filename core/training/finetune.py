"""Fine-tune mode: after the head has converged on cached features, unfreeze the base's top
layers and train on at a low learning rate (the Keras transfer-learning guide's recipe).

Batch normalisation layers stay frozen, which in Keras 3 also runs them in inference mode:
updating their statistics on a small dataset is the recipe's known pitfall (it wrecks what the
head learned). The frozen layers below the unfrozen ones then compute the same thing for an
image in every epoch: their output is cached (``zoo.training.activations``) and the epochs run
only the layers above. Where it cannot be cached (too large for the cache's bound, or no single
tensor between the two parts), the images are decoded once, kept as uint8, preprocessed batch
by batch, and the whole model runs in every epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.base import interrupts
from zoo.base.progress import note, progress_bar, status
from zoo.runtime.pipeline import default_workers
from zoo.runtime.preprocessing import preprocess
from zoo.sources.bundle_network import HEAD_LAYER, build_base, classifier
from zoo.sources.keras_model import import_keras
from zoo.training.activations import ActivationCache, make_room
from zoo.training.base import Base
from zoo.training.dataset import Dataset
from zoo.training.features import FeatureTask, model_pixels
from zoo.training.head import HeadResult, HeadSettings, class_weights
from zoo.training.settings import FinetuneSettings


@dataclass
class Finetuned:
    base_weights: Path
    """The base's weights after fine-tuning (a Keras ``.weights.h5`` file)."""
    kernel: np.ndarray
    bias: np.ndarray
    history: list[dict]
    probabilities: dict[str, np.ndarray]
    """split -> probabilities of its images (val, and test when there is one)."""
    activations: dict
    """Whether the epochs ran on cached activations (where, how stored, how many computed),
    or on the images, and why."""


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
    (dropout, batch size, patience, class weights, seed), which fine-tuning keeps.

    Each epoch sees every training image once: with ``tuning.copies`` above 1, epoch e sees
    its copy e mod copies (copy 0 the image itself, the others the augmented copies the head
    was trained on), as an augmenting data loader shows a new version each epoch."""
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
    unfrozen = candidates if unfreeze == "all" else candidates[-unfreeze:]
    for layer_ in unfrozen:
        layer_.trainable = True
    model.get_layer(HEAD_LAYER).trainable = True
    index = {label: i for i, label in enumerate(dataset.classes)}
    splits = [split for split in ("train", "val", "test") if dataset.split(split)]
    tasks = {
        split: [
            [FeatureTask(item.path, item.sha256, copy) for item in dataset.split(split)]
            for copy in range(tuning.copies if split == "train" else 1)
        ]
        for split in splits
    }
    labels = {
        split: np.array([index[item.label] for item in dataset.split(split)], np.int64)
        for split in splits
    }
    trained, load, activations = _on_activations(
        keras, model, unfrozen[0], len(unfrozen) < len(candidates), base, tasks, tuning, settings
    )
    if trained is None:
        status(f"fine-tuning on the images: {activations['reason']}")
        trained, load = model, _pixels(base, tasks, settings.seed)
    trained.compile(
        optimizer=keras.optimizers.Adam(tuning.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    batch_size, class_weight, seed = settings.batch_size, settings.class_weight, settings.seed
    weights_per_class = class_weights(labels["train"], len(dataset.classes), class_weight)
    bar = progress_bar("fine-tuning", tuning.epochs, "epoch")
    best = _keep_best(keras, settings.patience, epoch_offset, on_epoch, bar)
    status(f"fine-tuning the top {len(unfrozen)} layers")
    # Ctrl-C stops fit at a batch's end (and skips the predictions), then raises.
    with interrupts.deferred() as pending:
        trained.fit(
            _batches(keras, load, "train", labels["train"], batch_size, tuning.copies, seed),
            validation_data=_batches(keras, load, "val", labels["val"], batch_size),
            epochs=tuning.epochs,
            class_weight=dict(enumerate(weights_per_class.tolist())) if class_weight else None,
            callbacks=[best, _stop_when(keras, pending)],
            verbose=0,
        )
        bar.close()
        trained.set_weights(best.weights)
        probabilities = {
            split: trained.predict(
                _batches(keras, load, split, labels[split], batch_size), verbose=0
            )
            for split in splits
            if split != "train" and not pending
        }
    path = folder / "finetuned-base.weights.h5"
    network.save_weights(path)  # the layers trained are the network's own
    kernel, bias = model.get_layer(HEAD_LAYER).get_weights()
    return Finetuned(path, kernel, bias, best.history, probabilities, activations)


Loader = Callable[[str, int, np.ndarray], np.ndarray]
"""(split, copy, indices) -> that batch as the trained model's input, float32."""


def _on_activations(keras, model, lowest, frozen_below: bool, base, tasks, tuning, settings):
    """(the model above the boundary, a loader of its cached inputs, what was done), or
    (None, None, why not) when the activations cannot or may not be cached."""
    if not tuning.cache_gb:
        return None, None, {"used": False, "reason": "not asked for (--activation-cache-gb 0)"}
    if not frozen_below:
        return None, None, {"used": False, "reason": "every layer is unfrozen"}
    try:
        top = keras.Model(lowest.input, model.output, name=f"{model.name}_top")
        bottom = keras.Model(model.inputs[0], lowest.input)
    except ValueError:  # a connection skips over the boundary: no single tensor to cache
        reason = f"the layers below {lowest.name} reach those above it by other paths"
        return None, None, {"used": False, "reason": reason}
    cache = ActivationCache(
        base,
        lowest.name,
        bottom.output.shape[1:],
        lambda batch: np.asarray(bottom(batch, training=False), np.float32),
        lambda activations: np.asarray(top(activations, training=False)),
    )
    jobs = [job for split in tasks.values() for copy in split for job in copy]
    precision = cache.choose_precision(jobs, settings.seed)
    limit = int(tuning.cache_gb * 1e9)
    needed = len(jobs) * cache.bytes_each()
    record = {"layer": lowest.name, "shape": list(cache.shape), **precision, "bytes": needed}
    if needed > limit:
        reason = (
            f"their activations at {lowest.name} would take {needed / 1e9:.2f} GB, over the "
            f"{tuning.cache_gb:g} GB the activation cache may hold (--activation-cache-gb)"
        )
        note(f"zoo: {reason}; fine-tuning on the images instead, running the whole base on "
             "every image in every epoch (slower)")  # fmt: skip
        return None, None, {"used": False, "reason": reason, **record}
    present = {cache.path(job) for job in jobs if cache.path(job).is_file()}
    missing = len({job.key for job in jobs} - {p.stem for p in present})
    if not make_room(missing * cache.bytes_each(), limit, present):
        reason = f"the activation cache cannot make room for {missing} images' activations"
        return None, None, {"used": False, "reason": reason, **record}
    status(f"caching the activations at {lowest.name}'s input ({precision['dtype']})")
    extraction = cache.extract(jobs, settings.batch_size, settings.seed)
    record.update(
        used=True,
        computed=extraction.computed,
        cached=extraction.cached,
        seconds=round(extraction.seconds, 3),
    )
    paths = {
        split: [[cache.path(job) for job in copy] for copy in copies]
        for split, copies in tasks.items()
    }

    def load(split: str, copy: int, indices: np.ndarray) -> np.ndarray:
        files = paths[split][copy]
        return np.stack([np.load(files[i]) for i in indices]).astype(np.float32)

    return top, load, record


def _pixels(base: Base, tasks: dict, seed: int) -> Loader:
    """Every image (and copy) decoded once, kept as uint8, preprocessed batch by batch."""
    with ThreadPoolExecutor(default_workers(), thread_name_prefix="zoo-decode") as pool:
        pixels = {
            split: [
                np.stack(list(pool.map(lambda job: model_pixels(job, base.input, seed), copy)))
                for copy in copies
            ]
            for split, copies in tasks.items()
        }

    def load(split: str, copy: int, indices: np.ndarray) -> np.ndarray:
        return preprocess(pixels[split][copy][indices], base.input.preprocess)

    return load


def _batches(keras, load: Loader, split, labels, batch_size, copies=1, seed=None):
    class Batches(keras.utils.PyDataset):
        """``split``'s inputs a batch at a time; when seeded, shuffled each epoch, and the
        epoch's copy of each image taken."""

        def __init__(self):
            super().__init__()
            self.order = np.arange(len(labels))
            self.rng = np.random.default_rng(seed) if seed is not None else None
            self.epoch = 0
            self.shuffle()

        def __len__(self):
            return -(-len(labels) // batch_size)

        def __getitem__(self, i):
            index = self.order[i * batch_size : (i + 1) * batch_size]
            return load(split, self.epoch % copies, index), labels[index]

        def on_epoch_end(self):
            self.epoch += 1
            self.shuffle()

        def shuffle(self):
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
