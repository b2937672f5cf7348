"""What can go wrong in an export, as one line for the person at the terminal."""

from zoo.base.errors import ZooError


class ExportError(ZooError):
    """The export could not be made or written."""


class VerificationError(ZooError):
    """The exported model does not agree with Keras."""


class ConversionError(ExportError):
    """The model cannot be converted to a valid ONNX graph (one line, naming what failed)."""


class NonFiniteOutputs(VerificationError):
    """Keras or ONNX Runtime gave NaN or infinity on a photo: there is nothing to compare."""

    def __init__(self, model: str, side: str, image: str, batch: int):
        super().__init__(
            f"{model}: {side} gave non-finite outputs (NaN or infinity) on {image} "
            f"(batch {batch}); not verified: the model's weights are broken (a training run "
            "that diverged?) or the export computes something else"
        )
