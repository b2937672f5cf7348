"""zoo's commands: one module each, with ``add_command(commands)`` declaring its options next
to the code that reads them, and nothing heavier than ``zoo --help`` can afford imported at the
top (NumPy, Pillow, TensorFlow and the backends are imported when the command runs).

The built-in plugin ``zoo.plugins.commands`` adds them through the ``register_commands`` hook,
the way a third party's command comes in.
"""

from zoo.cli.commands import (
    bench,
    check_plugin,
    compare,
    evaluate,
    export,
    import_model,
    list_models,
    package,
    plugins,
    predict,
    serve,
    train,
    verify,
)

COMMANDS = (
    list_models,
    plugins,
    predict,
    export,
    bench,
    check_plugin,
    compare,
    verify,
    serve,
    train,
    evaluate,
    import_model,
    package,
)
"""In the order ``zoo --help`` lists them; plugins' commands follow."""
