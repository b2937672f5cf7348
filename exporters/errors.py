"""What can go wrong in an export, as one line for the person at the terminal."""

from zoo.errors import ZooError


class ExportError(ZooError):
    """The export could not be made or written."""


class VerificationError(ZooError):
    """The exported model does not agree with Keras."""


class ConversionError(ExportError):
    """The model cannot be converted to a valid ONNX graph (one line, naming what failed)."""
