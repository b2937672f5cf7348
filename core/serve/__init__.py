"""``zoo serve``: exported models behind an HTTP API on ONNX Runtime, with dynamic micro-batching.

Needs the ``serve`` extra (Starlette, uvicorn, python-multipart), not TensorFlow. The modules,
one job each: ``settings`` (the knobs), ``inputs`` (a request's images, with its limits),
``decoding`` (the decoding threads and their pixel budgets), ``batcher`` (gathering
concurrent requests into one ONNX Runtime run, within the queue's bounds), ``metrics``
(Prometheus text, Triton's counters among it), ``app`` (what both protocols share, and the
``/v1`` routes), ``v2`` (the Open Inference Protocol's routes), ``tensors`` (its request and
response bodies, binary extension included), ``server`` (listening, then loading the models,
and running uvicorn), and ``static/index.html`` (the page at ``/``). Importing this package
imports none of them.
"""
