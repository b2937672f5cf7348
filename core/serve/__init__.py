"""``zoo serve``: exported models behind an HTTP API on ONNX Runtime, with dynamic micro-batching.

Needs the ``serve`` extra (Starlette, uvicorn, python-multipart), not TensorFlow. The modules,
one job each: ``settings`` (the knobs), ``inputs`` (a request's images, with its limits),
``decoding`` (the decoding threads and their pixel budgets), ``batcher`` (gathering
concurrent requests into one ONNX Runtime run), ``metrics`` (Prometheus text), ``app`` (the
routes), ``server`` (loading models and running uvicorn), and
``static/index.html`` (the page at ``/``). Importing this package imports none of them.
"""
