"""The four classic ``keras.applications`` ImageNet classifiers, with Keras's own weights."""

from __future__ import annotations

from zoo import hookimpl
from zoo.model.spec import ModelSpec, WeightsSpec
from zoo.sources.keras_model import keras_application

KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


MODELS = (
    ModelSpec(
        name="vgg16",
        aliases=("vgg",),
        description="VGG16 (Simonyan & Zisserman 2014), 138M parameters",
        input_size=(224, 224),
        preprocess="caffe",
        weights=WeightsSpec(
            KERAS_WEIGHTS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            file_hash="64373286793e3c8b2b4e3219cbf3544b",
        ),
        build=keras_application("VGG16"),
    ),
    ModelSpec(
        name="resnet50",
        aliases=("resnet",),
        description="ResNet50 (He et al. 2015), 25.6M parameters",
        input_size=(224, 224),
        preprocess="caffe",
        weights=WeightsSpec(
            KERAS_WEIGHTS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            file_hash="2cb95161c43110f7111970584f804107",
        ),
        build=keras_application("ResNet50"),
    ),
    ModelSpec(
        name="inception_v3",
        aliases=("inceptionv3", "inception"),
        description="Inception v3 (Szegedy et al. 2015), 23.9M parameters",
        input_size=(299, 299),
        preprocess="tf",
        weights=WeightsSpec(
            KERAS_WEIGHTS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
            file_hash="9a0d58056eeedaa3f26cb7ebd46da564",
        ),
        build=keras_application("InceptionV3"),
    ),
    ModelSpec(
        name="mobilenet",
        aliases=("mobilenet_v1",),
        description="MobileNet v1, alpha 1.0 (Howard et al. 2017), 4.3M parameters",
        input_size=(224, 224),
        preprocess="tf",
        # Keras publishes no hash for the MobileNet files.
        weights=WeightsSpec(KERAS_WEIGHTS + "mobilenet/mobilenet_1_0_224_tf.h5"),
        build=keras_application("MobileNet", alpha=1.0, input_shape=(224, 224, 3)),
    ),
)


@hookimpl
def register_models(register):
    for spec in MODELS:
        register(spec)
