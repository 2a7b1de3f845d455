"""Read-only views of the running lab for the notebooks: MySQL rows, JuiceFS sessions,
segment files on the shared storage, and what is left after teardown."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.errors import LabError

FILE_TYPES = {0: "NEW", 1: "RAW", 2: "TO_INDEX", 3: "INDEX", 4: "TO_DELETE", 5: "NEW_MERGE", 6: "NEW_INDEX",
              7: "BACKUP"}


def mysql_query(params: Mapping[str, Any], sql: str, args: tuple = ()) -> list[dict[str, Any]]:
    """Run one query with pymysql (``params`` = ``Lab.mysql_params()``) and return dict rows."""
    import pymysql

    conn = pymysql.connect(host=params["host"], port=int(params["port"]), user=params["user"],
                           password=params["password"], database=params.get("database"),
                           cursorclass=pymysql.cursors.DictCursor, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def table_files(params: Mapping[str, Any], collection: str) -> list[dict[str, Any]]:
    """TableFiles rows of ``collection`` (and its partitions), with file_type spelled out."""
    rows = mysql_query(params, "SELECT f.id, f.table_id, f.segment_id, f.file_id, f.file_type, f.row_count, "
                               "f.file_size FROM TableFiles f JOIN Tables t ON f.table_id = t.table_id "
                               "WHERE t.table_id = %s OR t.owner_table = %s ORDER BY f.id",
                               (collection, collection))
    for r in rows:
        r["file_type"] = f"{r['file_type']} {FILE_TYPES.get(int(r['file_type']), '?')}"
    return rows


def session_rows(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per JuiceFS client session (one per mounted node)."""
    rows = [{"sid": s.get("Sid"), "host": s.get("HostName"), "mount point": s.get("MountPoint"),
             "pid": s.get("ProcessID"), "version": s.get("Version", "")}
            for s in status.get("Sessions") or []]
    return sorted(rows, key=lambda r: str(r["mount point"]))


def setting_rows(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The volume's format settings worth showing (secrets are never in `juicefs status`)."""
    s = status.get("Setting", {})
    keys = ["Name", "UUID", "Storage", "Bucket", "BlockSize", "Compression", "TrashDays", "MetaVersion"]
    units = {"BlockSize": "BlockSize (KiB)", "TrashDays": "TrashDays (days)"}
    return [{"setting": units.get(k, k), "value": s.get(k)} for k in keys if k in s]


def segment_files(storage_path: str | os.PathLike[str], collection: str) -> list[dict[str, Any]]:
    """Files under ``<storage.path>/db/tables/<collection>/`` (the Milvus 1.1 segment layout)."""
    root = Path(storage_path) / "db" / "tables" / collection
    if not root.is_dir():
        return []
    rows = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rows.append({"path": str(path.relative_to(Path(storage_path))), "bytes": path.stat().st_size})
    return rows


def _ancestors() -> set[int]:
    """This process and its parents (the kernel, papermill, `labkit run`): never lab leftovers."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def leftovers(home: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Processes and mounts that still belong to the lab at ``home`` (empty lists after a clean down)."""
    home = str(Path(home).resolve())
    inside = re.compile(re.escape(home) + r"(/|\s|$)")
    skip = _ancestors()
    procs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if inside.search(cmd):
            procs.append(f"{entry.name} {cmd.strip()[:160]}")
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if inside.match(line.split()[1] + " ")]
    return {"processes": procs, "mounts": mounts}


def service_commands(lab: Any, kind: str) -> list[str]:
    """The shell commands behind every recorded service of ``kind`` (secrets masked)."""
    from labkit.lab.services.base import get_service

    lines: list[str] = []
    for name, rec in sorted(lab.state.services().items()):
        if rec.get("kind") == kind:
            svc = get_service(kind, rec.get("backend", "local"), lab.state, name=name)
            lines += svc.commands()
    return [lab.state.mask(line) for line in lines]


def service_command(lab: Any, name: str) -> str:
    """The shell command behind one recorded service (e.g. node ``rw``), secrets masked."""
    from labkit.lab.services.base import get_service

    rec = lab.state.get(name) or {}
    if not rec:
        raise LabError(f"No service named {name!r} is recorded in {lab.home}; start it first.")
    svc = get_service(rec["kind"], rec.get("backend", "local"), lab.state, name=name)
    return lab.state.mask(" ".join(svc.commands()))


def mount_rows(mounts: Mapping[str, str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """node -> its data directory, with the filesystem type /proc/mounts reports for it."""
    table = {}
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        table[parts[1]] = parts[2]
    rows = []
    for node, path in mounts.items():
        real = str(Path(path).resolve())
        rows.append({"node": node, "path": str(path), "filesystem": table.get(real, "local directory")})
    return rows


def read_nodes(lab: Any) -> dict[str, str]:
    """``host:port`` -> node name of the running read-only nodes (what the router spreads searches over)."""
    from labkit.lab.procs import alive

    out = {}
    for name, rec in lab.state.services().items():
        if rec.get("kind") == "node" and rec.get("role") == "ro" and alive(rec.get("pid")):
            out[f"{rec.get('host', '127.0.0.1')}:{rec['port']}"] = name
    return out


def file_node_map(lab: Any, collection: str, client: Any = None) -> dict[int, str]:
    """TableFiles.id -> name of the node that searches it.

    With ``client`` connected to the router, asks the router itself (Cmd ``routing <collection>``);
    otherwise computes the same consistent-hash ring over the running read nodes.
    """
    names = {f"{r.get('host', '127.0.0.1')}:{r.get('port')}": n
             for n, r in lab.state.services().items() if r.get("kind") == "node"}
    if client is not None:
        status, text = client._cmd(f"routing {collection}")  # labkit router extension of Mishards' Cmd
        if not status.OK():
            raise LabError(f"The router could not describe its routing: {status.message}")
        return {int(f["id"]): names.get(f["node"], f["node"]) for f in json.loads(text)["files"]}
    from labkit.milvus.enums import SEARCHABLE
    from labkit.router.ring import Ring

    files = [r["id"] for r in table_files(lab.mysql_params(), collection)
             if int(str(r["file_type"]).split()[0]) in SEARCHABLE]
    nodes = read_nodes(lab)
    if not nodes:  # no read node: the router sends the search to the rw node
        return {f: "rw" for f in files}
    ring = Ring(nodes)
    return {f: nodes[ring.node_for(f)] for f in files}


def mysql_grants(params: Mapping[str, Any]) -> list[str]:
    """``SHOW GRANTS`` for the lab's user, password hashes masked."""
    rows = mysql_query(params, "SHOW GRANTS")
    return [re.sub(r"PASSWORD '[^']*'", "PASSWORD '****'", next(iter(r.values()))) for r in rows]


def router_topology(client: Any) -> list[dict[str, Any]]:
    """What the router sees (Cmd ``labkit_topology``): the rw node and each read node, live or suspended."""
    status, text = client._cmd("labkit_topology")
    if not status.OK():
        raise LabError(f"The router did not report its topology: {status.message}")
    topo = json.loads(text)
    rows = [{"address": topo.get("woserver", ""), "serves": "writes (WOSERVER) and anything but Search"}]
    live = set(topo.get("live_nodes", []))
    for addr in topo.get("read_nodes", []):
        rows.append({"address": addr,
                     "serves": "searches of its share of files" if addr in live else "suspended"})
    return rows
