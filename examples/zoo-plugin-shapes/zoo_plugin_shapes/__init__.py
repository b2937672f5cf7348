"""An example zoo plugin: one more keras.applications model, and a model of its own.

- ``densenet121``: Keras's DenseNet121 with its ImageNet weights; it needs the ``torch``
  preprocessing (x/255, then the ImageNet mean and std per channel).
- ``shapes``: a small subclassed Keras CNN that tells circles, squares and triangles apart,
  with its own labels, its own preprocessing and a weights file shipped in this package
  (``python -m zoo_plugin_shapes.train`` makes it again).
"""

from pathlib import Path

import zoo

ZOO_API_VERSION = 2
"""The zoo plugin API this plugin is written for: a zoo with another refuses it, in one line."""

LABELS = ("circle", "square", "triangle")
SHAPES_WEIGHTS = Path(__file__).with_name("shapes.weights.h5")
SHAPES = zoo.PreprocessSpec("shapes-unit", divisor=255.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
"""Pixels to [-1, 1] by mean/std, the way the shapes model was trained."""


def build_shapes(weights):
    import numpy as np  # imported when a model is built, so that `zoo list` stays light

    from zoo_plugin_shapes.model import ShapesNet

    model = ShapesNet()
    model(np.zeros((1, 64, 64, 3), np.float32))  # a subclassed model builds on its first call
    if weights:
        model.load_weights(weights)
    return model


@zoo.hookimpl
def register_preprocessors(register):
    register(SHAPES)


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="densenet121",
            aliases=("densenet",),
            description="DenseNet121 (Huang et al. 2016), 8.1M parameters",
            input_size=(224, 224),
            preprocess="torch",
            weights=zoo.WeightsSpec(
                "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
                "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                file_hash="9d60b8095a5708f2dcce2bca79d332c7",
            ),
            build=zoo.keras_application("DenseNet121"),
        )
    )
    register(
        zoo.ModelSpec(
            name="shapes",
            description="circle, square or triangle: a 3-class CNN trained on drawn shapes",
            input_size=(64, 64),
            preprocess="shapes-unit",
            labels=list(LABELS),
            weights=zoo.WeightsSpec(SHAPES_WEIGHTS.as_uri()),
            build=build_shapes,
        )
    )
