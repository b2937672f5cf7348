"""The hooks a zoo plugin may implement. Each receives a ``register`` callback (or the CLI)."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("zoo")
hookimpl = HookimplMarker("zoo")


@hookspec
def register_models(register):
    """Add models: call ``register(ModelSpec(...))`` once per model."""


@hookspec
def register_preprocessors(register):
    """Add named preprocessing: call ``register(PreprocessSpec(...))``."""


@hookspec
def register_backends(register):
    """Add inference backends: call ``register(backend)`` with a ``Backend`` instance."""


@hookspec
def register_exporters(register):
    """Add model exporters: call ``register(ExporterSpec(...))``."""


@hookspec
def register_commands(cli):
    """Add ``zoo`` subcommands: ``cli.add_parser(name, **argparse_keywords)`` returns the
    command's ``argparse.ArgumentParser`` (``cli`` is a ``zoo.cli.plugin_commands.PluginCommands``:
    what the hook adds reaches ``zoo`` only if it returns)."""
