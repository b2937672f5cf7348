"""What both peer runtimes do with a request: base64 JPEGs -> 224x224 uint8 RGB (Pillow, the
nearest-neighbour resize zoo uses by default) -> one ONNX Runtime run of the embedded-
preprocessing model -> each image's top 5 as "score:index". Run inside the peers' own venvs
(onnxruntime, Pillow, NumPy), so it imports nothing from zoo."""

import base64
import io
import os

import numpy as np
import onnxruntime as ort
from PIL import Image


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ["PEER_ORT_THREADS"])
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def top5(model: ort.InferenceSession, encoded: list[str]) -> list[list[str]]:
    pixels = np.stack(
        [
            np.asarray(
                Image.open(io.BytesIO(base64.b64decode(text)))
                .convert("RGB")
                .resize((224, 224), Image.Resampling.NEAREST)
            )
            for text in encoded
        ]
    )
    (scores,) = model.run(["probabilities"], {"image": pixels})
    best = np.argsort(-scores, axis=1)[:, :5]
    return [[f"{row[i]:f}:{i}" for i in indices] for row, indices in zip(scores, best, strict=True)]
