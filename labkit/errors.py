"""Errors that end up in front of a person: one plain sentence each."""


class LabError(Exception):
    """A problem the user can act on. ``str(exc)`` is one sentence; the CLI prints it and exits 1."""


class MissingBinary(LabError):
    """A program the lab needs is not installed; the message names the install command."""
