"""The error types for bad input, so every command can end with one clear line.

A family's format readers raise `FormatError` (or a subclass naming their release) with a
message that starts with the file (and line or key) and says what is wrong; the CLI prints the
message and exits 1 instead of a traceback.
"""

from __future__ import annotations


class FormatError(ValueError):
    """A file of a release, a feature file or a checkpoint does not have the documented form."""


class ConfigError(ValueError):
    """A config file, config string, override or setting is invalid (the message says which)."""
