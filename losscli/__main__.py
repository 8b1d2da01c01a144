"""Entry point for ``python -m losscli``."""

from losscli.cli import entry

entry()
