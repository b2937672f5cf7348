"""The shapes classifier: a subclassed Keras model (zoo takes those as well as functional ones)."""

import keras

from zoo_plugin_shapes import LABELS


@keras.saving.register_keras_serializable(package="zoo_plugin_shapes")
class ShapesNet(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv2D(16, 3, strides=2, activation="relu")
        self.conv2 = keras.layers.Conv2D(32, 3, strides=2, activation="relu")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.classifier = keras.layers.Dense(len(LABELS), activation="softmax")

    def call(self, inputs):
        return self.classifier(self.pool(self.conv2(self.conv1(inputs))))
