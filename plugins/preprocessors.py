"""The preprocessing modes of ``keras.applications`` (``imagenet_utils.preprocess_input``), and
``unit`` (x / 255), the usual one of models trained from scratch."""

from zoo import hookimpl
from zoo.model.spec import PreprocessSpec

CAFFE = PreprocessSpec(
    "caffe",
    channel_order="BGR",
    mean=(103.939, 116.779, 123.68),  # the ImageNet mean, in BGR order
)
"""VGG16, ResNet50: RGB to BGR, minus the ImageNet mean, no scaling."""

TF = PreprocessSpec("tf", divisor=127.5, mean=(1.0, 1.0, 1.0))
"""InceptionV3, MobileNet: x / 127.5 - 1, to the range [-1, 1]."""

TORCH = PreprocessSpec(
    "torch", divisor=255.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)
"""DenseNet and PyTorch-trained models: x / 255, then the ImageNet mean and std per channel."""

UNIT = PreprocessSpec("unit", divisor=255.0)
"""x / 255, to the range [0, 1]: the most common recipe for a model trained from scratch
(``ImageDataGenerator(rescale=1./255)``, ``x_train / 255``)."""

NONE = PreprocessSpec("none")
"""For models that normalise inside the graph (EfficientNet, ConvNeXt): raw 0..255 values."""


@hookimpl
def register_preprocessors(register):
    for spec in (CAFFE, TF, TORCH, UNIT, NONE):
        register(spec)
