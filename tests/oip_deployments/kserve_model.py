"""KServe's Python ModelServer serving the tiny test model: decoded pixels in (UINT8
[N, 4, 4, 3]), preprocessed on the server, its probabilities out.

python kserve_model.py NAME=MODEL.onnx [NAME=MODEL.onnx ...] --http_port N --grpc_port M
"""

import sys

import kserve
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse
from tiny_runtime import SIZE, preprocess, probabilities, session


class TinyClassifier(kserve.Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.session = session(path)
        self.ready = True

    def get_input_types(self):
        return [{"name": "image", "datatype": "UINT8", "shape": [-1, *SIZE, 3]}]

    def get_output_types(self):
        return [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        values = preprocess(payload.inputs[0].as_numpy())
        scores = probabilities(self.session, values).astype(np.float32)
        output = InferOutput(name="probabilities", shape=list(scores.shape), datatype="FP32")
        output.set_data_from_numpy(scores, binary_data=False)
        return InferResponse(response_id="", model_name=self.name, infer_outputs=[output])


if __name__ == "__main__":
    models = []
    while "=" in sys.argv[1]:
        models.append(TinyClassifier(*sys.argv.pop(1).split("=", 1)))
    kserve.ModelServer().start(models)
