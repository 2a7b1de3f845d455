"""Port choice for lab services: explicit, then the one recorded, then the article's default, then any."""

from __future__ import annotations

from labkit import procs
from labkit.errors import LabError


def choose_port(what: str, explicit: int | None, recorded: int | None, default: int | None) -> int:
    """The port a (not yet running) service should bind on 127.0.0.1.

    An explicit port that is taken is an error (the user asked for it); a recorded
    port is reused so URIs already written into node configs stay valid.
    """
    if explicit:
        if not 0 < int(explicit) < 65536:
            raise LabError(f"Port {explicit} for {what} is not a valid TCP port (1-65535).")
        if not procs.port_free(int(explicit)):
            raise LabError(f"Port {explicit} for {what} is already in use on 127.0.0.1; "
                           "choose another port or leave it out to pick a free one.")
        return int(explicit)
    if recorded and procs.port_free(int(recorded)):
        return int(recorded)
    return procs.free_port(default)
