"""Write notebooks 00-04 and 99 (outputs empty, kernelspec python3) from the cell lists below.

    .venv/bin/python tests/notebooks/build_notebooks.py

The .ipynb files are what people open and what git tracks; this script is how they are
kept consistent (same skeleton, same parameter cell). Edit here, re-run, commit the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

PARAMETERS = '''\
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root'''

DERIVE = '''\
cfg = labkit.config(SIZE)
out = OUT_DIR or None
cfg'''


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def skeleton(title: str, intro: str, imports: str, body: list, summary: str, check: str,
             params: str = "") -> nbformat.NotebookNode:
    cells = [md(f"# {title}\n\n{intro.strip()}"), code(imports), code(PARAMETERS + params, "parameters"),
             code(DERIVE),
             *body, md("## Summary\n\n" + summary.strip()), code(check, "check")]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


IMPORTS = '''\
import labkit
from labkit.lab import {lab}
from labkit.nb import {extra}

report = labkit.check_env()  # versions, services, FUSE, memory: says what is missing and how to get it
print(report)'''

# ---------------------------------------------------------------------------------------------
NB00 = skeleton(
    "00 · Overview: a Milvus 1.x cluster on JuiceFS",
    """
This lab rebuilds, on this one machine, the cluster of the article *Building a Milvus cluster
based on JuiceFS*: MySQL holds Milvus' metadata, JuiceFS (Redis + an object store) is mounted on
every node, one **read-write** Milvus node writes segments, **read-only** nodes search them, and
the **Mishards** router spreads searches over the read nodes.

Each notebook is one step of the article, run for real and checked at the end:

| notebook | step |
|---|---|
| 01 | MySQL: the `milvus` metadata database |
| 02 | JuiceFS: Redis + object store, `juicefs format`, one mount per node |
| 03 | Milvus rw and ro nodes on the shared JuiceFS path |
| 04 | Mishards: one address for the whole cluster |
| 05, 06 | storage comparison and first-query benchmark |
| 99 | teardown |

**Prerequisites:** none (this notebook starts nothing). **Time:** under a minute.
**System:** Linux, 2 cores, 2 GB RAM; FUSE (`/dev/fuse`) for real JuiceFS mounts. Without FUSE
(Binder) the nodes share one local directory and every notebook says so.
""",
    IMPORTS.format(extra="figures, overview, show", lab="Lab"),
    [
        md("""
## The cluster

The figure is drawn by `labkit.nb.figures.architecture_figure` from the same layout the lab starts:
one rw node, `cfg.ro_nodes` read nodes, one JuiceFS client per node.
"""),
        code('''\
fuse = overview.fuse_mode(report.fuse)
print(overview.storage_sentence(fuse))
fig = labkit.savefig(figures.architecture_figure(cfg.ro_nodes, fuse=fuse), "00_architecture", out)'''),
        md("""
## What will run where

Everything runs on this machine and listens on 127.0.0.1 only; ports are picked free at start
(the router takes 19530, Milvus' default, when nobody else has it). The lab's data, logs, mounts
and the `state.json` that lets every notebook find the running services live in the lab home:
"""),
        code('''\
print("lab home:", Lab().home)
placement = show.table(overview.placement_rows(cfg, fuse), title="processes the lab starts")
placement'''),
        md("""
## How long each notebook takes

Estimates for SIZE=small on 2 cores; `last_run_s` is filled in from the executed copies in
`artifacts/` once `labkit run` (or the tests) have run the notebooks.
"""),
        code('''\
times = show.table(overview.notebook_rows(), title="notebooks")
times'''),
    ],
    """
- The cluster has four layers: client → router → Milvus nodes → JuiceFS (Redis + object store),
  with MySQL beside them for Milvus' metadata.
- `labkit.check_env()` reported what this machine can run; anything marked missing comes with the
  command that installs it.
- Next: **01_mysql_metadata** starts the storage services.
""",
    '''\
assert report.ok, "the machine lacks something the lab needs (see the table above)"
assert sum(r["process"].startswith("labkit.node") for r in placement.rows) == 1 + cfg.ro_nodes
assert (labkit.nb.artifacts.artifacts_dir(out) / "00_architecture.png").is_file()
assert any(r["notebook"].startswith("01_") for r in times.rows)
labkit.record_metrics("00_overview", {"fuse": fuse, "size": cfg.size, "checks_missing": len(report.missing()),
                                      "processes": len(placement)}, out)''',
)

# ---------------------------------------------------------------------------------------------
NB01 = skeleton(
    "01 · MySQL: the metadata of the Milvus cluster",
    """
In a Milvus 1.x cluster every node reads and writes the same metadata: which collections exist
and which segment files (`TableFiles` rows) hold their vectors. The article runs MySQL on one of
the hosts and points every node's `server_config.yaml` at it with `general.meta_uri`.

Here `Lab().up()` starts the lab's storage: MariaDB (MySQL-compatible) with a `milvus` database
and user, and also Redis, the object store and the JuiceFS volume used in notebook 02. It is
idempotent: running it again reuses what is healthy and repairs what is not.

**Prerequisites:** 00 (optional). **Time:** about 30 s the first time, a second after.
""",
    IMPORTS.format(extra="overview, panel, show, views", lab="Lab"),
    [
        md("## Start the storage services"),
        code('''\
#papermill_description=lab_up
lab = Lab()
lab.up()
print(overview.storage_sentence(lab.fuse))
show.table(panel.service_rows(lab.status()), panel.SERVICE_COLUMNS, title="lab services")'''),
        md("""
## The article's command and the one run here

The article starts MySQL 5.7 in Docker and creates the database by hand. The lab runs MariaDB as
a plain process with its data under the lab home (passwords are generated per lab and masked):
"""),
        code('''\
article = """docker run -d --name mysql -p 3306:3306 -e MYSQL_ROOT_PASSWORD=123456 mysql:5.7
mysql -h 127.0.0.1 -uroot -p123456 -e 'create database milvus'"""
show.side_by_side("the article", article, "run here", "\\n".join(lab.commands()["mysql"]))'''),
        md("""
## The `meta_uri` line for server_config.yaml

Every node of the cluster gets this same line (the password is masked when shown):
"""),
        code('''\
meta_line = lab.state.mask(f"general:\\n  meta_uri: {lab.meta_uri()}")
show.Text(meta_line, "server_config.yaml")'''),
        md("## Connect with pymysql, as the nodes will"),
        code('''\
params = lab.mysql_params()
who = views.mysql_query(params, "SELECT VERSION() AS version, CURRENT_USER() AS user, DATABASE() AS db")
show.table(who)'''),
        code('''\
databases = [r["Database"] for r in views.mysql_query(params, "SHOW DATABASES")]
tables = [next(iter(r.values())) for r in views.mysql_query(params, "SHOW TABLES")]
print("databases:", databases)
print("tables in milvus:", tables or "none yet (the first Milvus node creates Tables, TableFiles, ...)")'''),
        md("What the lab's `milvus` user may do (all on the `milvus` database, nothing else):"),
        code('''\
grants = views.mysql_grants(params)
show.Text("\\n".join(grants), "SHOW GRANTS")'''),
    ],
    """
- MariaDB runs on 127.0.0.1 with a `milvus` database and user; the same `meta_uri` goes into
  every node's `server_config.yaml`.
- pymysql connects with the lab's generated credentials; Milvus creates its own tables
  (`Tables`, `TableFiles`, `Environment`) when the first node starts, in notebook 03.
- Next: **02_juicefs_format_and_mount**.
""",
    '''\
assert "milvus" in databases
assert any("`milvus`.*" in g for g in grants)
assert who[0]["db"] == "milvus"
assert lab.meta_uri().startswith("mysql://") and lab.meta_uri().endswith("/milvus")
assert params["password"] not in meta_line and "****" in meta_line
labkit.record_metrics("01_mysql_metadata", {"mysql_version": who[0]["version"], "milvus_tables": len(tables),
                                            "services_healthy": sum(s.healthy for s in lab.status())}, out)''',
)

# ---------------------------------------------------------------------------------------------
NB02 = skeleton(
    "02 · JuiceFS: format the volume, one mount per node",
    """
Milvus nodes in the article share their `db/` directory through JuiceFS: file metadata lives in
**Redis**, file data in an **object store** (the article: Azure Blob). Each host runs its own
JuiceFS client (`juicefs mount`), so the rw node's segment files show up on every ro node.

This notebook formats the volume, mounts it once per node (each mount with its own cache and
metrics port, as separate hosts would have), lists the clients with `juicefs status`, and checks
JuiceFS' close-to-open consistency: a file written and closed through one mount is read, intact,
through another.

**Prerequisites:** 01. **Time:** under a minute. **System:** FUSE for real mounts; without it
the nodes share one local directory (said below).
""",
    IMPORTS.format(extra="figures, overview, panel, show, views, walkthrough", lab="Lab"),
    [
        code('''\
#papermill_description=lab_up
lab = Lab()
lab.up()
print(overview.storage_sentence(lab.fuse))
show.table(panel.service_rows(s for s in lab.status() if s.kind in {"redis", "objectstore", "juicefs"}),
               panel.SERVICE_COLUMNS)'''),
        md("""
## `juicefs format`: the article's command and the one run here

The article formats against Azure Blob (`--storage wasb`, credentials in
`AZURE_STORAGE_CONNECTION_STRING`) and a remote Redis. The lab uses a local Redis and a local
object store; the shape of the command is the same:
"""),
        code('''\
article = """export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=...;AccountKey=..."
juicefs format --storage wasb --bucket https://<container> redis://<user>:<password>@<redis-host>:6379/1 test
juicefs mount -d redis://<user>:<password>@<redis-host>:6379/1 ~/jfs"""
show.side_by_side("the article (Azure Blob)", article, "run here (masked)", "\\n".join(lab.commands()["juicefs"]))'''),
        md("## One mount per node"),
        code('''\
#papermill_description=mounts
mounts = {name: lab.mount(name) for name in overview.node_names(cfg)}
show.table(views.mount_rows(mounts), title="each node's data directory")'''),
        code('''\
show.Text("\\n".join(views.service_commands(lab, "mount")) or "(no JuiceFS clients: shared directory)",
              "the mount commands")'''),
        md("""
## `juicefs status`

The volume's settings and one session per JuiceFS client. (Without FUSE there are no clients.)
"""),
        code('''\
status = lab.volume().juicefs_status()
sessions = views.session_rows(status)
show.table(views.setting_rows(status), title="volume settings")'''),
        code('''show.table(sessions, title="client sessions (one per mounted node)")'''),
        md("""
## Write on one mount, read on another

The rw node will write segment files and the ro nodes will open them. JuiceFS guarantees
*close-to-open* consistency: once the writer closes a file, any later `open` on another client
sees the new content. Timed:
"""),
        code('''\
#papermill_description=cross_mount
size_mb = max(4, cfg.fio_size_mb // 4)
trip = walkthrough.cross_mount_roundtrip(mounts["rw"], mounts["ro1"], size_mb)
show.table([trip], ["bytes", "write_close_s", "open_read_s", "write_MiB_s", "read_MiB_s", "same_content"])'''),
        code('''\
fig = figures.bar_figure({"write + close (rw mount)": trip["write_close_s"],
                        "open + read (ro1 mount)": trip["open_read_s"]}, f"{size_mb} MiB across two mounts")
labkit.savefig(fig, "02_cross_mount", out);'''),
    ],
    """
- The volume `milvus-jfs` keeps metadata in Redis and data blocks in the object store.
- Every node has its own data directory: a JuiceFS client each with FUSE, one shared local
  directory without it.
- A file written and closed on the rw mount was read, byte for byte, on the ro1 mount.
- Next: **03_milvus_rw_ro** puts Milvus nodes on these mounts.
""",
    '''\
assert trip["same_content"], "the reader did not see what the writer closed"
assert len(mounts) == 1 + cfg.ro_nodes
assert status["Setting"]["Name"]
if lab.fuse:
    assert {str(p) for p in mounts.values()} <= {s["mount point"] for s in sessions}
else:
    assert len({str(p) for p in mounts.values()}) == 1  # one shared directory
labkit.record_metrics("02_juicefs_format_and_mount", {"fuse": lab.fuse, "mounts": len(mounts),
                      "sessions": len(sessions), **{k: trip[k] for k in ("bytes", "write_close_s", "open_read_s")}},
                      out)''',
)

# ---------------------------------------------------------------------------------------------
NB03 = skeleton(
    "03 · Milvus nodes: one read-write, read-only on the same JuiceFS path",
    """
A Milvus 1.x cluster has exactly **one rw node** (it takes inserts, flushes segments to
`<storage.path>/db`, merges and builds indexes) and any number of **ro nodes** that only search.
They share nothing but MySQL (metadata) and the `db/` directory on JuiceFS.

The nodes here are `labkit.node`: a server that speaks Milvus 1.1's gRPC protocol, so the
client is the real **pymilvus 1.1.2**. Each node reads a real `server_config.yaml`.

**Prerequisites:** 01, 02. **Time:** about a minute.
""",
    IMPORTS.format(extra="overview, panel, show, views, walkthrough", lab="Lab, cluster")
    + "\nfrom labkit.node.config import render_server_config",
    [
        md("""
## server_config.yaml: rw and ro differ in one line

Rendered with the article's paths (the `db/` directory on the JuiceFS mount), the two files
differ only in `cluster.role`:
"""),
        code('''\
lab = Lab()
lab.up()
meta = lab.state.mask(lab.meta_uri())
article_cfg = {r: render_server_config(role=r, meta_uri=meta, storage_path="/root/jfs/milvus") for r in ("rw", "ro")}
show.diff(article_cfg["rw"], article_cfg["ro"], "rw/server_config.yaml", "ro/server_config.yaml")'''),
        md("## Start the nodes"),
        code('''\
#papermill_description=start_nodes
print(overview.storage_sentence(lab.fuse))
rw = cluster.start_node(lab, "rw", role="rw")
ro = cluster.start_node(lab, "ro1", role="ro")
show.table(panel.node_rows({n["name"]: {**n, "kind": "node"} for n in (rw, ro)}), panel.NODE_COLUMNS)'''),
        md("On this machine the two configs also differ in port and mount path (one JuiceFS client each):"),
        code('''\
configs = {n["name"]: lab.state.mask(open(n["config_path"]).read()) for n in (rw, ro)}
show.diff(configs["rw"], configs["ro1"], "rw", "ro1")'''),
        md("## Connect with pymilvus 1.1.2, to each node"),
        code('''\
rw_client, ro_client = cluster.connect(rw), cluster.connect(ro)
show.table([{"node": n, "server_version": c.server_version()[1], "role": c.get_config("cluster", "role")[1]}
                for n, c in (("rw", rw_client), ("ro1", ro_client))])'''),
        md("""
## Create a collection, insert, flush (on the rw node)

Each `flush` writes one segment: files under `<storage.path>/db/tables/<collection>/<segment>/`
and a `TableFiles` row in MySQL. Data becomes searchable only once flushed.

The collection's `index_file_size` is 1 MB and each batch is at least that big, so the rw node's
background merge (which joins segments smaller than `index_file_size`) leaves the three segments
as they are while we look at them.
"""),
        code('''\
#papermill_description=insert
walkthrough.fresh_collection(rw_client, COLLECTION, cfg.dim, index_file_size=1)
files_before = {f["path"] for f in views.segment_files(ro["storage_path"], COLLECTION)}
rows = walkthrough.unmerged_rows(cfg.dim, files=3, at_least=cfg.rows)
data = walkthrough.vectors(rows, cfg.dim, SEED)
ids = walkthrough.insert_batches(rw_client, COLLECTION, data, batches=3)
print("rows counted by the rw node:", rw_client.count_entities(COLLECTION)[1])'''),
        md("The segment files that appeared, seen through the **ro1** node's own mount:"),
        code('''\
files = [f for f in views.segment_files(ro["storage_path"], COLLECTION) if f["path"] not in files_before]
show.table(files, title=f"new under {ro['storage_path']}")'''),
        md("And the rows Milvus wrote to MySQL's `TableFiles` (file_type 1 = RAW: searchable, no index):"),
        code('''\
table_files = views.table_files(lab.mysql_params(), COLLECTION)
show.table(table_files)'''),
        md("""
## Search on the ro node

The ro node never saw the inserts: it reads the metadata from MySQL and the segment files from
its JuiceFS mount. Its answer is compared with brute force over the same vectors in numpy.
"""),
        code('''\
#papermill_description=search_ro
queries = walkthrough.vectors(cfg.nq, cfg.dim, SEED + 1)
status, results = ro_client.search(COLLECTION, cfg.topk, queries.tolist())
truth_ids, truth_dist = walkthrough.brute_force(data, ids, queries, cfg.topk)
ro_recall = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print(status, "| recall vs brute force:", ro_recall)'''),
        md("## A write to the ro node is refused"),
        code('''\
refused, _ = ro_client.insert(COLLECTION, data[:1].tolist(), ids=[10**9])
print("ro1 answered:", refused)'''),
        md("## Cluster panel (press Refresh after changing something)"),
        code('''panel.cluster_panel(lab)'''),
    ],
    """
- The rw and ro nodes run the same program; `cluster.role` decides who writes.
- Inserts and flushes on the rw node left segment files on JuiceFS and `TableFiles` rows in
  MySQL; the ro node found the data through its own mount and returned exactly the brute-force
  top-k.
- The ro node refused the insert with a Milvus status instead of accepting a write it could not
  persist.
- Next: **04_mishards** puts one address in front of all nodes.
""",
    '''\
assert status.OK() and ro_recall == 1.0
assert not refused.OK()
searchable = [r for r in table_files if r["file_type"].split()[0] in {"1", "2", "3"}]
assert rw_client.count_entities(COLLECTION)[1] == rows
assert sum(r["row_count"] for r in searchable) == rows and len(searchable) == 3
assert sum(f["path"].endswith(".rv") for f in files) == 3  # one vector file per new segment
assert [a for a, b in show.changed_lines(article_cfg["rw"], article_cfg["ro"])] == ["role: rw"]
labkit.record_metrics("03_milvus_rw_ro", {"fuse": lab.fuse, "rows": rows, "segments": len(searchable),
                                          "segment_files": len(files), "ro_recall": ro_recall,
                                          "refused_code": refused.code}, out)''',
    params='\nCOLLECTION: str = "lab_vectors"  # the collection this notebook creates afresh',
)

# ---------------------------------------------------------------------------------------------
NB04 = skeleton(
    "04 · Mishards: one address for the whole cluster",
    """
Clients should not have to know which node writes and which searches. **Mishards** sits in
front: every request except Search goes to the rw node; a Search is split by segment file, each
file sent to one read node chosen by a consistent-hash ring over the files' ids, and the
partial top-k lists are merged.

The lab's router (`labkit.router`) does the same, on port 19530 when it is free, so clients
connect exactly as the article's users did: `Milvus(host, 19530)`.

**Prerequisites:** 01-03. **Time:** about a minute.
""",
    IMPORTS.format(extra="figures, overview, panel, show, views, walkthrough", lab="Lab, cluster"),
    [
        md("""
## Start the router

The read node `ro2` is stopped first (if a previous run left it), so that adding it below shows
files moving.
"""),
        code('''\
#papermill_description=router
lab = Lab()
lab.up()
cluster.stop_node(lab, "ro2")
rw, ro1 = cluster.start_node(lab, "rw", role="rw"), cluster.start_node(lab, "ro1", role="ro")
router = cluster.start_router(lab)
print(overview.storage_sentence(lab.fuse))
print(f"router on {router['host']}:{router['port']}", "(19530, Milvus' default)" if router["port"] == 19530 else "")'''),
        code('''\
client = cluster.connect(router)  # as the article's users did: Milvus(host, 19530)
print("server_version through the router:", client.server_version())
show.table(views.router_topology(client), title="what the router sees (Cmd conn_stats)")'''),
        md("## Insert and search through the router"),
        code('''\
#papermill_description=insert
walkthrough.fresh_collection(client, COLLECTION, cfg.dim, index_file_size=1)  # 1 MB: segments stay unmerged
data = walkthrough.vectors(walkthrough.unmerged_rows(cfg.dim, files=12, at_least=cfg.rows), cfg.dim, SEED + 4)
ids = walkthrough.insert_batches(client, COLLECTION, data, batches=12)
print("rows:", client.count_entities(COLLECTION)[1])'''),
        code('''\
queries = walkthrough.vectors(cfg.nq, cfg.dim, SEED + 5)
truth_ids, _ = walkthrough.brute_force(data, ids, queries, cfg.topk)
status, results = client.search(COLLECTION, cfg.topk, queries.tolist())
recall_before = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print(status, "| recall vs brute force:", recall_before)'''),
        md("""
## Which node searches which file

The router hashes each `TableFiles.id` onto the ring of running read nodes:
"""),
        code('''\
before = views.file_node_map(lab, COLLECTION, client)
show.table(panel.segment_rows(before, ["ro1"]), title="segments per read node")'''),
        md("""
## Add a read node and watch files move

A consistent-hash ring moves only the files on the arcs the new node takes over; the others
stay where their cache already is. The router re-reads the running nodes every second.
"""),
        code('''\
#papermill_description=add_ro2
ro2 = cluster.start_node(lab, "ro2", role="ro")
after = walkthrough.wait_for(lambda: views.file_node_map(lab, COLLECTION, client), lambda m: "ro2" in m.values())
moved = {f: (before[f], after[f]) for f in before if before[f] != after.get(f)}
show.table(panel.segment_rows(after, ["ro1", "ro2"]), title=f"after adding ro2: {len(moved)} files moved")'''),
        code('''\
fig = figures.file_node_figure({"1 read node": before, "2 read nodes": after})
labkit.savefig(fig, "04_file_node_map", out);'''),
        code('''\
#papermill_description=search_after
status_after, results = walkthrough.retry_search(client, COLLECTION, cfg.topk, queries)
recall_after = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print(status_after, "| recall vs brute force with ro2:", recall_after)'''),
        md("## Cluster panel"),
        code('''panel.cluster_panel(lab, file_map=lambda: views.file_node_map(lab, COLLECTION, client))'''),
    ],
    """
- The router answers on one address, forwards writes to the rw node and splits searches over
  the read nodes by segment file.
- Routed results equal brute-force ground truth, before and after a read node joined.
- When `ro2` joined, only some files moved, all of them to `ro2`: the consistent-hash ring.
- Next: **05** compares storage back ends; **99_teardown** stops everything.
""",
    '''\
assert status.OK() and recall_before == 1.0
assert status_after.OK() and recall_after == 1.0
assert set(before.values()) == {"ro1"} and set(before) == set(after)
assert moved and all(new == "ro2" for _, new in moved.values())
labkit.record_metrics("04_mishards", {"router_port": router["port"], "files": len(after), "moved": len(moved),
                                      "recall_before": recall_before, "recall_after": recall_after}, out)''',
    params='\nCOLLECTION: str = "lab_routed"  # the collection this notebook creates afresh',
)

# ---------------------------------------------------------------------------------------------
NB99 = skeleton(
    "99 · Teardown: stop everything",
    """
Stops the router, the nodes, the JuiceFS mounts, Redis, MySQL and the object store, by the PIDs
the lab recorded, then checks that no process or mount of the lab remains. The same as
`labkit down` on the command line. Data stays on disk unless `PURGE` is true (then the next run
starts from scratch).

**Prerequisites:** none. **Time:** a few seconds.
""",
    IMPORTS.format(extra="panel, show, views", lab="Lab"),
    [
        code('''\
lab = Lab()
show.table(panel.service_rows(lab.status()), panel.SERVICE_COLUMNS, title="before")'''),
        code('''\
#papermill_description=down
lab.down(purge=PURGE)
left = views.leftovers(lab.home)
show.table([{"kind": k, "left": len(v), "items": "; ".join(v)} for k, v in left.items()], title="after")'''),
    ],
    """
- Every recorded service was stopped by PID; no lab process or mount remains.
- Run `01_mysql_metadata` (or `labkit up`) to bring the lab back; data survives unless purged.
""",
    '''\
assert left == {"processes": [], "mounts": []}, left
assert not [s for s in lab.status() if s.healthy and s.pid]
labkit.record_metrics("99_teardown", {"purged": PURGE}, out)''',
    params="\nPURGE: bool = False  # also delete the lab data: MySQL, Redis, objects, mounts",
)

ALL = {
    "00_overview.ipynb": NB00,
    "01_mysql_metadata.ipynb": NB01,
    "02_juicefs_format_and_mount.ipynb": NB02,
    "03_milvus_rw_ro.ipynb": NB03,
    "04_mishards.ipynb": NB04,
    "99_teardown.ipynb": NB99,
}


def main(argv: list[str]) -> int:
    only = set(argv)
    for name, nb in ALL.items():
        if only and name not in only:
            continue
        for i, cell in enumerate(nb.cells):  # stable ids keep git diffs small
            cell["id"] = str(i)  # what nbstripout normalises ids to
        nbformat.validate(nb)
        (NOTEBOOKS / name).write_text(nbformat.writes(nb) + "\n")
        print("wrote", NOTEBOOKS / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
