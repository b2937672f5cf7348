"""What every deployment of the tiny test model does with a request, inside the server's own
virtual environment (NumPy, Pillow, ONNX Runtime; nothing from zoo): decode base64 images,
resize them as zoo does (nearest), preprocess, run the .onnx file."""

import base64
import io

import numpy as np
import onnxruntime
from PIL import Image

SIZE = (4, 4)


def session(path: str) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def pixels(encoded: list) -> np.ndarray:
    """Base64 images (str or bytes) -> (N, 4, 4, 3) uint8 RGB."""
    return np.stack(
        [
            np.asarray(
                Image.open(io.BytesIO(base64.b64decode(text)))
                .convert("RGB")
                .resize(SIZE[::-1], Image.Resampling.NEAREST)
            )
            for text in encoded
        ]
    )


def preprocess(values: np.ndarray, kind: str = "unit") -> np.ndarray:
    """``unit``: x / 255, the tiny model's own; ``bgr``: the channels swapped too, another
    model's preprocessing (a wrong deployment)."""
    x = values.astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(x[..., ::-1]) if kind == "bgr" else x


def probabilities(model: onnxruntime.InferenceSession, values: np.ndarray) -> np.ndarray:
    (scores,) = model.run(["probabilities"], {"image": values})
    return scores
