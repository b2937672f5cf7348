"""Triton's Python backend serving a zoo-exported .onnx file on ONNX Runtime: the file lies
beside this one, as ``model.onnx``; the input and outputs are the graph's own, as the model's
config.pbtxt names them."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils
from tiny_runtime import session


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.input = config["input"][0]["name"]
        self.outputs = [output["name"] for output in config["output"]]
        folder = Path(args["model_repository"]) / args["model_version"]
        self.session = session(str(folder / "model.onnx"))

    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, self.input).as_numpy()
            results = self.session.run(self.outputs, {self.input: values})
            tensors = [pb_utils.Tensor(n, r) for n, r in zip(self.outputs, results, strict=True)]
            responses.append(pb_utils.InferenceResponse(tensors))
        return responses
