"""The bottom layer: what every part of zoo needs and nothing model-specific.

Errors and exit statuses, writing files and folders (temp, then rename), zoo's paths, strict
JSON, interrupts, stdio and progress, text output, the machine's hardware, the version. It
imports nothing else of zoo's; every other layer may import it.
"""
