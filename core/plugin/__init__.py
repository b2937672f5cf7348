"""zoo's plugin system: the hookspecs, the pluggy manager that loads zoo's own plugins and
third parties' (entry point group ``zoo``), the guard every plugin call runs inside, and the
registry the plugins fill. Above ``zoo.model``: it holds specs, it does not run them.
"""
