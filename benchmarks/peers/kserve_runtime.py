"""KServe's Python ModelServer for the peer benchmark (it has no batcher: one request, one run).

python kserve_runtime.py MODEL.onnx --http_port N --workers 1
"""

import sys

import kserve
from common import session, top5
from kserve import InferOutput, InferRequest, InferResponse


class OnnxClassifier(kserve.Model):
    def __init__(self, path: str):
        super().__init__("mobilenet")
        self.session = session(path)
        self.ready = True

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        rows = top5(self.session, list(payload.inputs[0].data))
        flat = [label for row in rows for label in row]
        output = InferOutput(
            name="probabilities", shape=[len(rows), 5], datatype="BYTES", data=flat
        )
        return InferResponse(response_id="", model_name=self.name, infer_outputs=[output])


if __name__ == "__main__":
    path = sys.argv.pop(1)
    kserve.ModelServer().start([OnnxClassifier(path)])
