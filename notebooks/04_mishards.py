# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Mishards: one address for the whole cluster
#
# Clients should not have to know which node writes and which searches. **Mishards** sits in
# front: every request except Search goes to the rw node; a Search is split by segment file, each
# file sent to one read node chosen by a consistent-hash ring over the files' ids, and the
# partial top-k lists are merged.
#
# The lab's router (`labkit.router`) does the same, on port 19530 when it is free, so clients
# connect exactly as the article's users did: `Milvus(host, 19530)`.
#
# **Prerequisites:** 01-03. **Time:** about a minute.

# %%
import labkit
from labkit.lab import Lab, cluster
from labkit.nb import figures, overview, panel, show, views, walkthrough

report = labkit.check_env()  # versions, services, FUSE, memory: says what is missing and how to get it
print(report)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root
COLLECTION: str = "lab_routed"  # the collection this notebook creates afresh

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
cfg

# %% [markdown]
# ## Start the router
#
# The read node `ro2` is stopped first (if a previous run left it), so that adding it below shows
# files moving.

# %%
#papermill_description=router
lab = Lab()
lab.up()
cluster.stop_node(lab, "ro2")
rw, ro1 = cluster.start_node(lab, "rw", role="rw"), cluster.start_node(lab, "ro1", role="ro")
router = cluster.start_router(lab)
print(overview.storage_sentence(lab.fuse))
print(f"router on {router['host']}:{router['port']}", "(19530, Milvus' default)" if router["port"] == 19530 else "")

# %%
client = cluster.connect(router)  # as the article's users did: Milvus(host, 19530)
print("server_version through the router:", client.server_version())
show.table(views.router_topology(client), title="what the router sees (Cmd conn_stats)")

# %% [markdown]
# ## Insert and search through the router

# %%
#papermill_description=insert
walkthrough.fresh_collection(client, COLLECTION, cfg.dim, index_file_size=1)  # 1 MB: segments stay unmerged
data = walkthrough.vectors(walkthrough.unmerged_rows(cfg.dim, files=12, at_least=cfg.rows), cfg.dim, SEED + 4)
ids = walkthrough.insert_batches(client, COLLECTION, data, batches=12)
print("rows:", client.count_entities(COLLECTION)[1])

# %%
queries = walkthrough.vectors(cfg.nq, cfg.dim, SEED + 5)
truth_ids, _ = walkthrough.brute_force(data, ids, queries, cfg.topk)
status, results = client.search(COLLECTION, cfg.topk, queries.tolist())
recall_before = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print(status, "| recall vs brute force:", recall_before)

# %% [markdown]
# ## Which node searches which file
#
# The router hashes each `TableFiles.id` onto the ring of running read nodes:

# %%
before = views.file_node_map(lab, COLLECTION, client)
show.table(panel.segment_rows(before, ["ro1"]), title="segments per read node")

# %% [markdown]
# ## Add a read node and watch files move
#
# A consistent-hash ring moves only the files on the arcs the new node takes over; the others
# stay where their cache already is. The router re-reads the running nodes every second.

# %%
#papermill_description=add_ro2
ro2 = cluster.start_node(lab, "ro2", role="ro")
after = walkthrough.wait_for(lambda: views.file_node_map(lab, COLLECTION, client), lambda m: "ro2" in m.values())
moved = {f: (before[f], after[f]) for f in before if before[f] != after.get(f)}
show.table(panel.segment_rows(after, ["ro1", "ro2"]), title=f"after adding ro2: {len(moved)} files moved")

# %%
fig = figures.file_node_figure({"1 read node": before, "2 read nodes": after})
labkit.savefig(fig, "04_file_node_map", out)

# %%
#papermill_description=search_after
status_after, results = walkthrough.retry_search(client, COLLECTION, cfg.topk, queries)
recall_after = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print(status_after, "| recall vs brute force with ro2:", recall_after)

# %% [markdown]
# ## Cluster panel

# %%
panel.cluster_panel(lab, file_map=lambda: views.file_node_map(lab, COLLECTION, client))

# %% [markdown]
# ## Summary
#
# - The router answers on one address, forwards writes to the rw node and splits searches over
#   the read nodes by segment file.
# - Routed results equal brute-force ground truth, before and after a read node joined.
# - When `ro2` joined, only some files moved, all of them to `ro2`: the consistent-hash ring.
# - Next: **05** compares storage back ends; **99_teardown** stops everything.

# %% tags=["check"]
assert status.OK() and recall_before == 1.0
assert status_after.OK() and recall_after == 1.0
assert set(before.values()) == {"ro1"} and set(before) == set(after)
assert moved and all(new == "ro2" for _, new in moved.values())
labkit.record_metrics("04_mishards", {"router_port": router["port"], "files": len(after), "moved": len(moved),
                                      "recall_before": recall_before, "recall_after": recall_after}, out)
