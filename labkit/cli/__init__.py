"""The ``labkit`` command line: ``main`` dispatches to one module per command."""

from labkit.cli.dispatch import main as main
