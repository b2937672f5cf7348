"""Loading and running a model: images, preprocessing, scores, ``Model`` and ``zoo.load``, ONNX
Runtime sessions, the batch pipeline, bench, compare, plots and plugin conformance. Above
``zoo.sources``; below the exporters, Ray, training, serving and the CLI.
"""
