"""zoo's version, and the version of the plugin API it offers."""

__version__ = "0.1.0"
API_VERSION = 2
"""The plugin API's version, bumped when a hook or a spec changes incompatibly. A plugin may
declare the version it was written for (``ZOO_API_VERSION`` in its entry point's module);
zoo refuses to register one that declares another (``zoo.plugin.manager``)."""
