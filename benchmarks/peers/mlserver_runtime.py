"""MLServer's custom runtime for the peer benchmark: model-settings.json names it, with
adaptive batching on (MLServer concatenates the queued requests' inputs into one call)."""

from common import session, top5
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class OnnxClassifier(MLModel):
    async def load(self) -> bool:
        self.session = session(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = top5(self.session, list(payload.inputs[0].data))
        flat = [label for row in rows for label in row]
        output = ResponseOutput(
            name="probabilities", shape=[len(rows), 5], datatype="BYTES", data=flat
        )
        return InferenceResponse(model_name=self.name, outputs=[output])
