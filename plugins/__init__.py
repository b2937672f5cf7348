"""zoo's built-in plugins: each module is an ordinary plugin, registered through the same hooks
as a third-party one (see ``zoo.plugin.manager.DEFAULT_PLUGINS``)."""
