"""The ``zoo`` command: the parser and error handling (``zoo.cli.main``), the options commands
share (``zoo.cli.options``) and one module per command (``zoo.cli.commands``). The top layer:
it may import every other; nothing imports it but the entry point and ``zoo.plugins.commands``.
"""
