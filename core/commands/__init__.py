"""zoo's built-in commands: one module each, its options declared next to the code that reads
them. Each module imports only what ``zoo --help`` can afford at the top; NumPy, Pillow and
the backends are imported when the command runs."""

from . import bench, check_plugin, compare, export, models, plugins, predict

BUILTIN_COMMANDS = (models, plugins, predict, export, bench, check_plugin, compare)
"""In the order ``zoo --help`` lists them; plugins' commands follow."""
