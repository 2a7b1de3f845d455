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
# The nodes here are `labkit.node`: a server that speaks Milvus 1.1's gRPC protocol, so the
# client is the real **pymilvus 1.1.2**. Each node reads a real `server_config.yaml`.
#
# **Prerequisites:** 01, 02. **Time:** about a minute.

# %%
import labkit
from labkit.lab import Lab, cluster
from labkit.nb import overview, panel, show, views, walkthrough

report = labkit.check_env()  # versions, services, FUSE, memory: says what is missing and how to get it
print(report)
from labkit.node.config import render_server_config

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root
COLLECTION: str = "lab_vectors"  # the collection this notebook creates afresh

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
cfg

# %% [markdown]
# ## server_config.yaml: rw and ro differ in one line
#
# Rendered with the article's paths (the `db/` directory on the JuiceFS mount), the two files
# differ only in `cluster.role`:

# %%
lab = Lab()
lab.up()
meta = lab.state.mask(lab.meta_uri())
article_cfg = {r: render_server_config(role=r, meta_uri=meta, storage_path="/root/jfs/milvus") for r in ("rw", "ro")}
show.diff(article_cfg["rw"], article_cfg["ro"], "rw/server_config.yaml", "ro/server_config.yaml")

# %% [markdown]
# ## Start the nodes

# %%
#papermill_description=start_nodes
print(overview.storage_sentence(lab.fuse))
rw = cluster.start_node(lab, "rw", role="rw")
ro = cluster.start_node(lab, "ro1", role="ro")
show.table(panel.node_rows({n["name"]: {**n, "kind": "node"} for n in (rw, ro)}), panel.NODE_COLUMNS)

# %% [markdown]
# On this machine the two configs also differ in port and mount path (one JuiceFS client each):

# %%
configs = {n["name"]: lab.state.mask(open(n["config_path"]).read()) for n in (rw, ro)}
show.diff(configs["rw"], configs["ro1"], "rw", "ro1")

# %% [markdown]
# ## Connect with pymilvus 1.1.2, to each node

# %%
rw_client, ro_client = cluster.connect(rw), cluster.connect(ro)
show.table([{"node": n, "server_version": c.server_version()[1], "role": c.get_config("cluster", "role")[1]}
                for n, c in (("rw", rw_client), ("ro1", ro_client))])

# %% [markdown]
# ## Create a collection, insert, flush (on the rw node)
#
# Each `flush` writes one segment: files under `<storage.path>/db/tables/<collection>/<segment>/`
# and a `TableFiles` row in MySQL. Data becomes searchable only once flushed.
#
# The collection's `index_file_size` is 1 MB and each batch is at least that big, so the rw node's
# background merge (which joins segments smaller than `index_file_size`) leaves the three segments
# as they are while we look at them.

# %%
#papermill_description=insert
walkthrough.fresh_collection(rw_client, COLLECTION, cfg.dim, index_file_size=1)
files_before = {f["path"] for f in views.segment_files(ro["storage_path"], COLLECTION)}
rows = walkthrough.unmerged_rows(cfg.dim, files=3, at_least=cfg.rows)
data = walkthrough.vectors(rows, cfg.dim, SEED)
ids = walkthrough.insert_batches(rw_client, COLLECTION, data, batches=3)
print("rows counted by the rw node:", rw_client.count_entities(COLLECTION)[1])

# %% [markdown]
# The segment files that appeared, seen through the **ro1** node's own mount:

# %%
files = [f for f in views.segment_files(ro["storage_path"], COLLECTION) if f["path"] not in files_before]
show.table(files, title=f"new under {ro['storage_path']}")

# %% [markdown]
# And the rows Milvus wrote to MySQL's `TableFiles` (file_type 1 = RAW: searchable, no index):

# %%
table_files = views.table_files(lab.mysql_params(), COLLECTION)
show.table(table_files)

# %% [markdown]
# ## Search on the ro node
#
# The ro node never saw the inserts: it reads the metadata from MySQL and the segment files from
# its JuiceFS mount. Its answer is compared with brute force over the same vectors in numpy.

# %%
#papermill_description=search_ro
queries = walkthrough.vectors(cfg.nq, cfg.dim, SEED + 1)
status, results = ro_client.search(COLLECTION, cfg.topk, queries.tolist())
truth_ids, truth_dist = walkthrough.brute_force(data, ids, queries, cfg.topk)
ro_recall = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print(status, "| recall vs brute force:", ro_recall)

# %% [markdown]
# ## A write to the ro node is refused

# %%
refused, _ = ro_client.insert(COLLECTION, data[:1].tolist(), ids=[10**9])
print("ro1 answered:", refused)

# %% [markdown]
# ## Cluster panel (press Refresh after changing something)

# %%
panel.cluster_panel(lab)

# %% [markdown]
# ## Summary
#
# - The rw and ro nodes run the same program; `cluster.role` decides who writes.
# - Inserts and flushes on the rw node left segment files on JuiceFS and `TableFiles` rows in
#   MySQL; the ro node found the data through its own mount and returned exactly the brute-force
#   top-k.
# - The ro node refused the insert with a Milvus status instead of accepting a write it could not
#   persist.
# - Next: **04_mishards** puts one address in front of all nodes.

# %% tags=["check"]
assert status.OK() and ro_recall == 1.0
assert not refused.OK()
searchable = [r for r in table_files if r["file_type"].split()[0] in {"1", "2", "3"}]
assert rw_client.count_entities(COLLECTION)[1] == rows
assert sum(r["row_count"] for r in searchable) == rows and len(searchable) == 3
assert sum(f["path"].endswith(".rv") for f in files) == 3  # one vector file per new segment
assert [a for a, b in show.changed_lines(article_cfg["rw"], article_cfg["ro"])] == ["role: rw"]
labkit.record_metrics("03_milvus_rw_ro", {"fuse": lab.fuse, "rows": rows, "segments": len(searchable),
                                          "segment_files": len(files), "ro_recall": ro_recall,
                                          "refused_code": refused.code}, out)
