"""What notebooks 03 and 04 show of a cluster labkit did not start (``labkit.lab.existing``).

The lab's own files (server_config.yaml, the router's env file), processes (kill, restart, the command
line) and the panel of local services do not exist for such a cluster: the notebooks ask the cluster
over the wire where it can answer and print one of ``SKIPPED`` where it cannot.
"""

from __future__ import annotations

import json
import re
from typing import Any

# server_config.yaml keys the notebooks read over the wire, by section (Milvus 1.1 ``get_config``)
CONFIG_KEYS = {"cluster": ("enable", "role"), "general": ("timezone", "meta_uri"), "network": ("bind.port",),
               "storage": ("path",), "wal": ("enable",), "cache": ("cache_size",)}

SKIPPED = {
    "command": "Skipped: the lab's command line for node rw, because the nodes are the existing cluster's "
               "and were not started here.",
    "volumes": "Skipped: the lab's folders for the article's volumes, because the existing cluster's nodes "
               "keep theirs on their own hosts.",
    "mysql": "Skipped: the TableFiles rows, because no MySQL of the existing cluster is named "
             "(set LABKIT_CLUSTER_MYSQL).",
    "files": "Skipped: the segment files, because no storage path of the existing cluster is named "
             "(LABKIT_CLUSTER_STORAGE) or no TableFiles rows were read.",
    "mounts": "Skipped: comparing two nodes' mounts, because an existing cluster gives this machine one view "
              "of its storage at most, not one per node.",
    "panel": "Skipped: the cluster panel, because it shows the lab's own local services and none run here.",
    "router_env": "Skipped: the lab router's env file, because the existing router was not started here.",
    "router_command": "Skipped: the lab's router command line, because the existing router was not "
                      "started here.",
    "add_node": "Skipped: adding ro2, because the lab does not start nodes in an existing cluster.",
    "fault": "Skipped: the fault demo (killing and restarting ro1), because the existing cluster's nodes are "
             "not the lab's to kill.",
    "ro3": "Skipped: starting ro3, because the lab does not start nodes in an existing cluster.",
}


def sentence(ext: Any) -> str:
    """One line on which cluster the notebook talks to."""
    from labkit.lab.cluster import address

    parts = [f"router {address(ext.router)}"]
    if ext.rw:
        parts.append(f"rw {address(ext.rw)}")
    parts += [f"{r['name']} {address(r)}" for r in ext.ro]
    return f"An existing cluster ({ext.source}): {', '.join(parts)}. Nothing is started or stopped here."


def mask(uri: str) -> str:
    """``scheme://user:****@host...``: the password of a URI hidden."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:****@", uri)


def config_over_wire(client: Any) -> str:
    """The ``CONFIG_KEYS`` of a node as YAML-like text, asked with ``get_config`` (passwords masked)."""
    lines = []
    for section, keys in CONFIG_KEYS.items():
        lines.append(f"{section}:")
        for key in keys:
            status, value = client.get_config(section, key)
            text = mask(str(value)) if status.OK() else f"(not answered: {status.message})"
            lines.append(f"  {key}: {text}")
    return "\n".join(lines)


def router_cmd(client: Any, command: str) -> dict[str, Any] | None:
    """A labkit router's Cmd extension (``labkit_topology``, ``routing <c>``) as JSON; None when the router
    does not answer it (Mishards itself has no such command)."""
    try:
        status, text = client._cmd(command)
        return json.loads(text) if status.OK() else None
    except Exception:  # noqa: BLE001 - any router that cannot answer: the caller says so
        return None


def file_node_map(client: Any, collection: str, ext: Any) -> dict[int, str] | None:
    """TableFiles.id -> the read node (its LABKIT_CLUSTER_* name where known) the router sends it to,
    or None when the router does not report its routing."""
    from labkit.lab.cluster import address

    got = router_cmd(client, f"routing {collection}")
    if got is None:
        return None
    names = {address(r): r["name"] for r in ([ext.rw] if ext.rw else []) + ext.ro}
    return {int(f["id"]): names.get(f["node"], f["node"]) for f in got.get("files", [])}
