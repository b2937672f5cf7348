"""MLServer's custom runtime for the tiny test model: encoded images in (BYTES, base64 in the
JSON: MLServer has no binary extension), decoded and preprocessed on the server, its
probabilities out. model-settings.json names it, the .onnx file as ``parameters.uri`` and the
preprocessing (``tiny_runtime.preprocess``) as ``parameters.extra.preprocessing``."""

import numpy as np
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
from tiny_runtime import pixels, preprocess, probabilities, session


class TinyClassifier(MLModel):
    async def load(self) -> bool:
        self.session = session(self.settings.parameters.uri)
        self.preprocessing = self.settings.parameters.extra["preprocessing"]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        values = preprocess(pixels(list(payload.inputs[0].data)), self.preprocessing)
        scores = probabilities(self.session, values).astype(np.float32)
        output = ResponseOutput(
            name="probabilities",
            shape=list(scores.shape),
            datatype="FP32",
            data=scores.ravel().tolist(),
        )
        return InferenceResponse(model_name=self.name, outputs=[output])
