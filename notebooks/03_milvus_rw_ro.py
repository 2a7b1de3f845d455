# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Milvus nodes: one read-write, read-only on the same JuiceFS path
#
# A Milvus 1.x cluster has exactly **one rw node** (it takes inserts, flushes segments to
# `<storage.path>/db`, merges and builds indexes) and any number of **ro nodes** that only search.
# They share nothing but MySQL (metadata) and the `db/` directory on JuiceFS.
#
# **Prerequisites:** 01, 02. **Time:** about 20 minutes with the exercises; the cells run in about
# half a minute.
#
# **Read along:** the article's Step 3; the [bootcamp tutorial](https://github.com/milvus-io/bootcamp/tree/new-bootcamp/deployments/juicefs)
# it links (section "3. Starting Milvus").

# %%
import hashlib
from pathlib import Path

import numpy as np
import pymysql
from milvus import IndexType, MetricType, Milvus

import labkit
from labkit.lab import Lab, cluster
from labkit.nb import overview, panel, show, views, walkthrough
from labkit.node.store_maintain import BUILD_MIN_ROWS

env_ok = labkit.check_env(strict=True).ok  # one sentence if something required is missing (table: 00)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root
COLLECTION: str = "lab_vectors"  # the collection this notebook creates afresh
NLIST: int = 16  # IVF_FLAT clusters; a search visiting all of them (nprobe NLIST) is exact

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
print(f"SIZE={cfg.size}: vectors of {cfg.dim} dimensions, top {cfg.topk} of {cfg.nq} queries")

# %% [markdown]
# ## Step 3 in the article
#
# > Install Milvus on every node of the cluster and give each Milvus node read or write
# > permission. Only one Milvus node can be the write node; the others must be read nodes. First,
# > set the parameters of the sections `cluster` and `general` in the Milvus system configuration
# > file **server_config.yaml**:
# >
# > Section `cluster`
# >
# > | Parameter | Description | Setting |
# > |---|---|---|
# > | `enable` | whether to enable cluster mode | `true` |
# > | `role` | Milvus deployment role | `rw` / `ro` |
# >
# > Section `general`
# > ```
# > # meta_uri is the URI for metadata storage, using MySQL (for Milvus Cluster). Format: mysql://<username:password>@host:port/database
# > general:
# >   timezone: UTC+8
# >   meta_uri: mysql://root:milvusroot@host:3306/milvus
# > ```
# > During installation, the JuiceFS shared storage path is set to **/root/jfs/milvus/db**.
# > ```
# > 1 sudo docker run -d --name milvus_gpu_1.0.0 --gpus all \
# > 2 -p 19530:19530 \
# > 3 -p 19121:19121 \
# > 4 -v /root/jfs/milvus/db:/var/lib/milvus/db \  #/root/jfs/milvus/db is the shared storage path
# > 5 -v /home/$USER/milvus/conf:/var/lib/milvus/conf \
# > 6 -v /home/$USER/milvus/logs:/var/lib/milvus/logs \
# > 7 -v /home/$USER/milvus/wal:/var/lib/milvus/wal \
# > 8 milvusdb/milvus:1.0.0-gpu-d030521-1ea92e
# > ```
# > When the installation is complete, start Milvus and check that it started correctly.
#
# — *Building a Milvus Cluster Based on JuiceFS*, Milvus blog, 2021 (Japanese edition, translated)
#
# **How the lab differs:** this machine has no GPU and no Docker engine, and no Milvus 1.x server
# can be installed on it, so each node is `python -m labkit.node --config server_config.yaml`: a
# server that reads a Milvus 1.1 `server_config.yaml`, keeps the 1.1 segment layout and metadata
# tables, and speaks Milvus 1.1's gRPC protocol, so the client below is the real **pymilvus 1.1.2**.
# Its `storage.path` is `<the node's JuiceFS mount>/milvus`, so `db/` lands exactly where the article's
# `-v /root/jfs/milvus/db:/var/lib/milvus/db` puts it.

# %% [markdown]
# ## Start the nodes

# %%
#papermill_description=start_nodes
lab = Lab()
lab.up()  # storage from 01 and 02, repaired if needed
print(overview.storage_sentence(lab.fuse))
rw = cluster.start_node(lab, "rw", role="rw")
ro = cluster.start_node(lab, "ro1", role="ro")
show.table(panel.node_rows({n["name"]: {**n, "kind": "node"} for n in (rw, ro)}), panel.NODE_COLUMNS)

# %% [markdown]
# ## The article's `docker run` beside the lab's command line

# %%
article_docker = """\
sudo docker run -d --name milvus_gpu_1.0.0 --gpus all \\
-p 19530:19530 \\
-p 19121:19121 \\
-v /root/jfs/milvus/db:/var/lib/milvus/db \\
-v /home/$USER/milvus/conf:/var/lib/milvus/conf \\
-v /home/$USER/milvus/logs:/var/lib/milvus/logs \\
-v /home/$USER/milvus/wal:/var/lib/milvus/wal \\
milvusdb/milvus:1.0.0-gpu-d030521-1ea92e"""
show.side_by_side("the article (one per host)", article_docker,
                  "this lab (node rw)", views.service_command(lab, "rw"))

# %% [markdown]
# Each `-v` of the article, and where the lab keeps the same thing for node `rw`:

# %%
conf_dir = rw["config_path"].rsplit("/", 1)[0]
show.table([
    {"inside the container": "/var/lib/milvus/db", "the article (host)": "/root/jfs/milvus/db (JuiceFS)",
     "this lab": f"{rw['storage_path']}/db ({'JuiceFS' if lab.fuse else 'shared directory'})"},
    {"inside the container": "/var/lib/milvus/conf", "the article (host)": "/home/$USER/milvus/conf",
     "this lab": conf_dir},
    {"inside the container": "/var/lib/milvus/logs", "the article (host)": "/home/$USER/milvus/logs",
     "this lab": conf_dir.replace("/conf", "/logs")},
    {"inside the container": "/var/lib/milvus/wal", "the article (host)": "/home/$USER/milvus/wal",
     "this lab": conf_dir.replace("/conf", "/wal")},
    {"inside the container": "port 19530 (gRPC)", "the article (host)": "19530", "this lab": str(rw["port"])},
], title="the article's volumes and ports, and the lab's")

# %% [markdown]
# ## server_config.yaml of the rw node
#
# The complete file the rw node reads (the MySQL password masked). Note `cluster.enable`/`role`,
# `general.timezone` and `meta_uri`, `storage.path` on the JuiceFS mount, the WAL and the cache.

# %%
configs = {n["name"]: lab.state.mask(open(n["config_path"]).read()) for n in (rw, ro)}
show.Text(configs["rw"], rw["config_path"])

# %% [markdown]
# ## server_config.yaml of a ro node

# %%
show.Text(configs["ro1"], ro["config_path"])

# %% [markdown]
# The two files differ in the role, and here also in the port and the mount path (on separate
# hosts both would be 19530 and `/root/jfs/milvus`):

# %%
show.diff(configs["rw"], configs["ro1"], "rw", "ro1")

# %% [markdown]
# ## pymilvus 1.1.2: connect to each node

# %%
rw_client = Milvus(host=rw["host"], port=rw["port"])
ro_client = Milvus(host=ro["host"], port=ro["port"])
for name, client in (("rw", rw_client), ("ro1", ro_client)):
    print(name, "server_version:", client.server_version()[1],
          "| cluster.role:", client.get_config("cluster", "role")[1])

# %% [markdown]
# ## Create a collection, insert, flush (on the rw node)
#
# Each `flush` seals what was inserted into one segment: files under
# `<storage.path>/db/tables/<collection>/<segment>/` and a `TableFiles` row in MySQL. Data becomes
# searchable once flushed. The collection's `index_file_size` is 1 MB and each batch is at least that
# big, so the rw node's background merge (it joins segments smaller than `index_file_size`) leaves
# the three segments as they are while we look at them. Each batch also has at least 4096 rows: like
# Milvus 1.1, the node builds indexes only for segments that large (smaller ones are searched raw).

# %%
#papermill_description=insert
walkthrough.drop_if_exists(rw_client, COLLECTION)  # a previous run's collection: start afresh
status = rw_client.create_collection({"collection_name": COLLECTION, "dimension": cfg.dim,
                                      "index_file_size": 1, "metric_type": MetricType.L2})
print("create_collection:", status)

# each segment >= 1 MB (left unmerged) and >= BUILD_MIN_ROWS (4096: smaller segments stay raw, unindexed)
rows = 3 * max(BUILD_MIN_ROWS, walkthrough.unmerged_rows(cfg.dim, files=1), cfg.rows // 3)
data = walkthrough.vectors(rows, cfg.dim, SEED)  # random float32 vectors (a helper: data, not a lesson)
ids = list(range(rows))
for part in np.array_split(np.arange(rows), 3):
    status, inserted = rw_client.insert(COLLECTION, records=data[part].tolist(), ids=part.tolist())
    print("insert:", status, f"({len(inserted)} ids)", "| flush:", rw_client.flush([COLLECTION]))
print("count_entities on the rw node:", rw_client.count_entities(COLLECTION)[1])

# %% [markdown]
# ## Build an index (on the rw node)
#
# `create_index` returns when the rw node has built an IVF_FLAT index file for every segment; the
# index files land on JuiceFS beside the raw ones, and the ro nodes load them from there.

# %%
#papermill_description=create_index
status = rw_client.create_index(COLLECTION, IndexType.IVF_FLAT, {"nlist": NLIST})
print("create_index:", status)
print("describe_index:", rw_client.get_index_info(COLLECTION)[1])

# %% [markdown]
# The rows Milvus wrote to MySQL. `file_type` 1 is RAW (searchable, no index), 3 is INDEX; a raw
# file whose index is built becomes 7 (BACKUP: kept, not searched). Rows of type 4 (TO_DELETE) belong
# to a collection dropped by an earlier run; the rw node removes them shortly, so they are left out.

# %%
params = lab.mysql_params()
conn = pymysql.connect(host=params["host"], port=params["port"], user=params["user"],
                       password=params["password"], database=params["database"], autocommit=True)
with conn.cursor(pymysql.cursors.DictCursor) as cur:
    cur.execute("SELECT id, segment_id, file_id, file_type, row_count, file_size AS `file_size (bytes)` "
                "FROM TableFiles "
                "WHERE table_id = %s AND file_type <> 4 ORDER BY id", (COLLECTION,))
    table_files = cur.fetchall()
show.table(table_files, title="SELECT ... FROM TableFiles WHERE table_id = COLLECTION AND file_type <> 4")

# %% [markdown]
# The files of these segments, seen through the **ro1** node's own mount:

# %%
segments = {r["segment_id"] for r in table_files}
files = [f for f in views.segment_files(ro["storage_path"], COLLECTION)
         if f["path"].split("/")[3] in segments]
show.table([{"path": f["path"], "size (bytes)": f["bytes"]} for f in files],
           title=f"under {ro['storage_path']}")

# %% [markdown]
# ## Search on the ro node
#
# The ro node never saw the inserts: it reads the file list from MySQL and the files from its
# JuiceFS mount. Its answer is compared with brute force over the same vectors in numpy.

# %%
#papermill_description=search_ro
queries = walkthrough.vectors(cfg.nq, cfg.dim, SEED + 1)
status, results = ro_client.search(COLLECTION, cfg.topk, queries.tolist(), params={"nprobe": NLIST})
truth_ids, truth_dist = walkthrough.brute_force(data, ids, queries, cfg.topk)
ro_recall = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print("search on ro1:", status, "| first hit of query 0:", results[0][0].id, f"{results[0][0].distance:.4f}")
print("recall against brute force:", ro_recall)

# %% [markdown]
# ## Cluster panel
#
# Services, nodes and what each node serves; press **Refresh** after changing something (for
# example after stopping a node with `cluster.stop_node(lab, "ro1")` in another cell).

# %%
panel.cluster_panel(lab)

# %% [markdown]
# ## Exercises
#
# ### Exercise 3.1: write through a ro node
# Insert one vector through `ro_client` (id `10**9`) and read the status the node returns.
#
# **What you should see:** a status that is not OK, with a message that the node is read-only;
# `count_entities` on the rw node is unchanged: a ro node refuses writes instead of accepting data
# it could not persist.
#
# The solution is the next cell, collapsed: click the dotted bar to open it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 3.1
refused, _ = ro_client.insert(COLLECTION, records=data[:1].tolist(), ids=[10**9])
print("ro1 answered:", refused)
assert not refused.OK() and rw_client.count_entities(COLLECTION)[1] == rows

# %% [markdown]
# ### Exercise 3.2: one segment, two mounts
# Take the first segment of `table_files` and list its directory
# `<storage_path>/db/tables/<COLLECTION>/<segment_id>/` through the rw node's mount and through
# ro1's mount. Compare the file names and a SHA-256 of each file.
#
# **What you should see:** the same names and the same hashes on both mounts: two JuiceFS clients
# reading one file system. (Without FUSE both paths are the same shared directory.)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 3.2
segment = table_files[0]["segment_id"]
seen = {}
for node in (rw, ro):
    folder = Path(node["storage_path"]) / "db" / "tables" / COLLECTION / segment
    seen[node["name"]] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
                          for p in sorted(folder.iterdir())}
    print(folder, seen[node["name"]])
assert seen["rw"] == seen["ro1"] and seen["rw"]

# %% [markdown]
# ## Summary
#
# - The rw and ro nodes run the same program; `cluster.role` decides who writes.
# - `create_collection`, `insert`, `flush` and `create_index` on the rw node left segment and
#   index files on JuiceFS and `TableFiles` rows in MySQL.
# - The ro node found the data through its own mount and returned exactly the brute-force top-k.
# - Next: **04_mishards** puts one address in front of all nodes.

# %% tags=["check"]
conn.close()
assert status.OK() and ro_recall == 1.0
assert rw_client.count_entities(COLLECTION)[1] == rows
searchable = [r for r in table_files if r["file_type"] in (1, 2, 3)]
assert sum(r["row_count"] for r in searchable) == rows and len(searchable) == 3
assert [r["file_type"] for r in searchable] == [3, 3, 3]  # INDEX: create_index built all three
assert sum(f["path"].endswith(".rv") for f in files) == 3  # one raw vector file per segment
for name, text in configs.items():
    assert "enable: true" in text and f"role: {'rw' if name == 'rw' else 'ro'}" in text
    assert "timezone: UTC+8" in text and "meta_uri: mysql://" in text and "****" in text
    assert f"path: {lab.mount(name)}/milvus" in text
assert {a for a, _ in show.changed_lines(configs["rw"], configs["ro1"])} >= {"role: rw"}
metrics = labkit.record_metrics("03_milvus_rw_ro", {
    "fuse": lab.fuse, "rows": rows, "segments": len(searchable), "segment_files": len(files),
    "ro_recall": ro_recall}, out)
