"""Where a model comes from: the Keras applications, a user's Keras file, an imported file, a
trained bundle, a ``.onnx`` file, their weights, and the cache of verified exports. The
resolver (``zoo.sources.resolver``) is the one place a command's MODEL argument is told apart
and made a ``ModelSpec``. Above ``zoo.plugin``: sources register what they find.
"""
