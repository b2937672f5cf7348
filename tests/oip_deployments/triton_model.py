"""Triton's Python backend serving a zoo-exported .onnx file on ONNX Runtime: the file lies
beside this one, as ``model.onnx``; the input is the graph's own (preprocessed FP32)."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils
from tiny_runtime import probabilities, session


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]
        folder = Path(args["model_repository"]) / args["model_version"]
        self.session = session(str(folder / "model.onnx"))

    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, self.input).as_numpy()
            scores = probabilities(self.session, values)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(self.output, scores)]))
        return responses
