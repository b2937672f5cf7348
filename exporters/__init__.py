"""Model exporters (ONNX), registered through the ``register_exporters`` hook."""
