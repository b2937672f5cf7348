"""The ``zoo`` command's exit statuses, in one place: commands return them, the CLI maps
interrupts and errors to them."""

import signal

EXIT_ERROR = 1
"""A user's error (one ``zoo: ...`` line), or a command whose inputs did not all succeed."""
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
