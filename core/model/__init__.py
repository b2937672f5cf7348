"""What a model *is*, as data: its spec (``ModelSpec`` and the specs plugins register), its
``InputConfig`` (size, preprocessing, labels, interpolation, output), its labels, and its card
(what an exported ``.onnx`` carries). No NumPy, no framework: above ``zoo.base`` only.
"""
