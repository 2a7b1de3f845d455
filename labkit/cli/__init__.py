"""The ``labkit`` command line (``labkit.cli.main:main``)."""
