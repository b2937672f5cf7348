"""Train the shapes model on drawn shapes and write ``shapes.weights.h5`` next to this file.

python -m zoo_plugin_shapes.train
"""

import numpy as np
from PIL import Image, ImageDraw

from zoo.runtime.preprocessing import preprocess
from zoo_plugin_shapes import LABELS, SHAPES, SHAPES_WEIGHTS, build_shapes


def draw(shape: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One RGB image: a shape of random colour, size and place on a random background."""
    background, colour = (tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(2))
    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    radius = int(rng.integers(10, 26))
    cx, cy = (int(c) for c in rng.integers(radius, size - radius, 2))
    if shape == "circle":
        pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    elif shape == "square":
        pen.rectangle([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    else:
        pen.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour
        )
    return np.asarray(image)


def dataset(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(LABELS), count)
    pixels = np.stack([draw(LABELS[label], rng) for label in labels])
    return preprocess(pixels, SHAPES), labels


def main() -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = build_shapes(None)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = dataset(6000, seed=1)
    model.fit(x, y, epochs=15, batch_size=64, verbose=2)
    x_test, y_test = dataset(600, seed=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"held-out accuracy: {accuracy:.3f}")
    model.save_weights(SHAPES_WEIGHTS)
    print(f"wrote {SHAPES_WEIGHTS} ({SHAPES_WEIGHTS.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
