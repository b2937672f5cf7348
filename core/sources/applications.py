"""The 40 ``keras.applications`` architectures of Keras 3, as data: the input size each is
built for and the preprocessing its ImageNet weights expect (a name the built-in preprocessors
plugin registers). ``"none"``: the model normalises raw 0..255 pixels itself (EfficientNet,
EfficientNetV2, MobileNetV3, ConvNeXt).

Read by the export tests and benchmarks; a plugin can register any of them with
``ModelSpec(build=keras_application(factory), input_size=..., preprocess=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    factory: str
    """The name in ``keras.applications``."""
    size: int
    """The square input size of the factory's default (and of its ImageNet weights)."""
    preprocess: str


def _family(preprocess: str, sizes: dict[str, int]) -> list[Architecture]:
    return [Architecture(factory, size, preprocess) for factory, size in sizes.items()]


ARCHITECTURES: dict[str, Architecture] = {
    a.factory: a
    for a in [
        *_family(
            "none",
            {
                "ConvNeXtTiny": 224,
                "ConvNeXtSmall": 224,
                "ConvNeXtBase": 224,
                "ConvNeXtLarge": 224,
                "ConvNeXtXLarge": 224,
                "EfficientNetB0": 224,
                "EfficientNetB1": 240,
                "EfficientNetB2": 260,
                "EfficientNetB3": 300,
                "EfficientNetB4": 380,
                "EfficientNetB5": 456,
                "EfficientNetB6": 528,
                "EfficientNetB7": 600,
                "EfficientNetV2B0": 224,
                "EfficientNetV2B1": 240,
                "EfficientNetV2B2": 260,
                "EfficientNetV2B3": 300,
                "EfficientNetV2S": 384,
                "EfficientNetV2M": 480,
                "EfficientNetV2L": 480,
                "MobileNetV3Small": 224,
                "MobileNetV3Large": 224,
            },
        ),
        *_family("torch", {"DenseNet121": 224, "DenseNet169": 224, "DenseNet201": 224}),
        *_family(
            "caffe",
            {"ResNet50": 224, "ResNet101": 224, "ResNet152": 224, "VGG16": 224, "VGG19": 224},
        ),
        *_family(
            "tf",
            {
                "InceptionResNetV2": 299,
                "InceptionV3": 299,
                "Xception": 299,
                "MobileNet": 224,
                "MobileNetV2": 224,
                "NASNetMobile": 224,
                "NASNetLarge": 331,
                "ResNet50V2": 224,
                "ResNet101V2": 224,
                "ResNet152V2": 224,
            },
        ),
    ]
}
"""Every architecture, by factory name."""

REPRESENTATIVES = (
    "MobileNetV3Small",
    "EfficientNetB0",
    "ConvNeXtTiny",
    "NASNetMobile",
    "InceptionResNetV2",
    "DenseNet121",
    "Xception",
    "ResNet50V2",
)
"""One per family whose layers differ: the default test run exports these."""

PLUGIN_TRIAL = (
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "ResNet50V2",
    "DenseNet121",
    "Xception",
    "NASNetMobile",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ConvNeXtTiny",
    "InceptionResNetV2",
)
"""The eleven a plugin author is most likely to reach for: the export benchmark's default."""
