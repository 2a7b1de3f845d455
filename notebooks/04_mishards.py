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
# front: every request except Search goes to the rw node (`WOSERVER`); a Search is split by segment
# file, each file sent to one read node chosen by a consistent-hash ring over the files' ids, and the
# partial top-k lists are merged. It reads the file lists from MySQL (`SQLALCHEMY_DATABASE_URI`).
#
# The lab's router (`python -m labkit.router`) does the same, reads the same settings, and takes
# port 19530 when it is free, so clients connect as the article's users did: `Milvus(host, 19530)`.
# Two differences (`docs/differences-from-milvus-1.1.md`): the lab's rw node tells the router of
# every change to the file lists before it acknowledges the write, so the router searches the list
# it already holds without querying MySQL until a change arrives (Mishards queries MySQL on every
# search); and the router sends a lab node its part of a search over a plain TCP connection it
# keeps open, with the same protobuf bytes, instead of a gRPC call (a real Milvus node gets gRPC).
#
# **Prerequisites:** 01-03. **Time:** about 20 minutes with the exercises; the cells run in about
# a minute.
#
# **Read along:** the article's Step 4; Milvus 1.1 [Mishards](https://milvus.io/docs/v1.1.1/mishards.md);
# the [bootcamp tutorial](https://github.com/milvus-io/bootcamp/tree/new-bootcamp/deployments/juicefs)
# the article links (section "4. Starting Mishards").
#
# **An existing cluster:** with `LABKIT_CLUSTER_ROUTER`, `_RW` and `_RO` set (see the README) the
# notebook starts nothing: inserts, index and searches go through that router, the routing table is
# shown when the router reports it, and adding a node, the fault demo (killing a read node) and the
# panel are skipped with a sentence saying so.

# %%
import os
import signal

from IPython.display import display
from milvus import IndexType, MetricType, Milvus

import labkit
from labkit.lab import Lab, cluster
from labkit.lab.procs import free_port
from labkit.nb import existing_view, faults, figures, overview, panel, show, views, walkthrough
from labkit.router.ring import Ring

env_ok = labkit.check_env(strict=True).ok  # one sentence if something required is missing (table: 00)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root
COLLECTION: str = "lab_routed"  # the collection this notebook creates afresh
FAULT_SECONDS: float = 1.0  # how long the fault demo searches with a read node down

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
print(f"SIZE={cfg.size}: top {cfg.topk} of {cfg.nq} queries per search")

# %% [markdown]
# ## Step 4 in the article, and the tutorial's settings
#
# > Finally, start the Mishards service on **any** node in the cluster. The image below shows
# > Mishards started successfully. For details, see the GitHub
# > [tutorial](https://github.com/milvus-io/bootcamp/tree/new-bootcamp/deployments/juicefs).
#
# — *Building a Milvus Cluster Based on JuiceFS*, Milvus blog, 2021 (Japanese edition, translated)
#
# The tutorial starts Mishards with docker-compose (`docker-compose -f cluster_mishards.yml up`,
# image `milvusdb/mishards`, `command: ["python", "mishards/main.py"]`); its settings are environment
# variables. They are shown on the left below, as the tutorial lists them (milvus-io/bootcamp,
# `deployments/juicefs/README.md`, `cluster_mishards.yml`); on the right the lab router's env file,
# which it reads at start (`python -m labkit.router --env-file router.env`).

# %%
#papermill_description=router
ext = cluster.existing()  # LABKIT_CLUSTER_* names a cluster the user runs: use it, start nothing
lab = Lab()
if ext is None:
    lab.up()
    cluster.stop_node(lab, "ro2")  # a previous run's ro2: stopped, so that adding it below shows files moving
rw, ro1 = cluster.start_node(lab, "rw", role="rw"), cluster.start_node(lab, "ro1", role="ro")
router = cluster.start_router(lab)
print(overview.storage_sentence(lab.fuse) if ext is None else existing_view.sentence(ext))
print(f"router on {router['host']}:{router['port']}",
      "(19530, Milvus' default)" if router["port"] == 19530 else "")

# %%
tutorial_env = """\
FROM_EXAMPLE: 'true'
SQLALCHEMY_DATABASE_URI: mysql+pymysql://root:milvusroot@192.168.1.85:3306/milvus?charset=utf8mb4
DEBUG: 'true'
SERVER_PORT: 19531
WOSERVER: tcp://192.168.1.85:19530
DISCOVERY_PLUGIN_PATH: static
DISCOVERY_STATIC_HOSTS: 192.168.1.85, 192.168.1.38
DISCOVERY_STATIC_PORT: 19530"""
if ext is None:
    router_env = lab.state.mask(open(router["env_file"]).read())
    display(show.side_by_side("bootcamp tutorial (cluster_mishards.yml, environment)", tutorial_env,
                              f"this lab ({router['env_file']}, masked)", router_env))
else:
    print(tutorial_env)
    print(existing_view.SKIPPED["router_env"])

# %% [markdown]
# | setting | the tutorial | this lab |
# |---|---|---|
# | `WOSERVER` | the rw node, `tcp://<ip>:19530` | the rw node on 127.0.0.1 |
# | `SQLALCHEMY_DATABASE_URI` | the MySQL of Step 1 (root) | the same MariaDB as the nodes (user `milvus`) |
# | `SERVER_PORT` | 19531 | 19530 when free: the router takes Milvus' default port |
# | `DISCOVERY_*` | `static`: a fixed host list, all on port 19530 | `labkit`: the lab's running ro nodes |
# | `MAX_RETRY`, `SEARCH_TIMEOUT`, `SUSPEND_SECONDS` | defaults | failover, described below |
#
# `labkit` discovery reads the running ro nodes from the lab's state and re-reads them every second
# (static hosts work too: `cluster.start_router(lab, hosts=[...])`). A failed read node's files are sent
# to the others, up to `MAX_RETRY` rounds; the node is skipped for `SUSPEND_SECONDS`.
#
# How the router was started (the tutorial: `docker-compose -f cluster_mishards.yml up`):

# %%
print(views.service_command(lab, "router") if ext is None else existing_view.SKIPPED["router_command"])

# %% [markdown]
# ## Connect through the router

# %%
client = Milvus(host=router["host"], port=router["port"])  # as the article's users did: Milvus(host, 19530)
print("server_version through the router:", client.server_version())
if ext is None or existing_view.router_cmd(client, "labkit_topology") is not None:
    display(show.table(views.router_topology(client), title="what the router sees (Cmd conn_stats)"))
else:
    print("The router does not answer labkit's `labkit_topology` command (Mishards has none): not shown.")

# %% [markdown]
# ## Insert, index and search through the router
#
# Twelve batches, each flushed into its own segment (1 MB `index_file_size`, so the rw node does
# not merge them), then an IVF_FLAT index. All of it goes through the router to the rw node.

# %%
#papermill_description=insert
walkthrough.drop_if_exists(client, COLLECTION)
print("create_collection:", client.create_collection({"collection_name": COLLECTION, "dimension": cfg.dim,
                                                      "index_file_size": 1, "metric_type": MetricType.L2}))
data = walkthrough.vectors(walkthrough.unmerged_rows(cfg.dim, files=12, at_least=cfg.rows), cfg.dim, SEED + 4)
ids = walkthrough.insert_batches(client, COLLECTION, data, batches=12)  # 12 x (insert + flush)
print("create_index:", client.create_index(COLLECTION, IndexType.IVF_FLAT, {"nlist": 16}))
print("count_entities through the router:", client.count_entities(COLLECTION)[1])

# %%
queries = walkthrough.vectors(cfg.nq, cfg.dim, SEED + 5)
truth_ids, _ = walkthrough.brute_force(data, ids, queries, cfg.topk)
status, results = client.search(COLLECTION, cfg.topk, queries.tolist(), params={"nprobe": 16})
recall_before = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print("search through the router:", status, "| recall against brute force:", recall_before)

# %% [markdown]
# ## Which node searches which file
#
# The router hashes each `TableFiles.id` onto the ring of running read nodes:

# %%
if ext is None:
    before = views.file_node_map(lab, COLLECTION, client)
    display(show.table(panel.segment_rows(before, ["ro1"]), title="segment files per read node"))
else:
    before = existing_view.file_node_map(client, COLLECTION, ext)
    if before is None:
        print("The router does not answer labkit's `routing` command (Mishards has none): not shown.")
    else:
        display(show.table(panel.segment_rows(before, sorted(set(before.values()))),
                           title="segment files per read node"))

# %% [markdown]
# ## Add a read node and watch files move
#
# A consistent-hash ring moves only the files on the arcs the new node takes over; the others
# stay where their cache already is. The router re-reads the running nodes every second.

# %%
#papermill_description=add_ro2
if ext is not None:
    print(existing_view.SKIPPED["add_node"])
else:
    ro2 = cluster.start_node(lab, "ro2", role="ro")
    file_map = lambda: views.file_node_map(lab, COLLECTION, client)  # noqa: E731 - asked again and again
    after = walkthrough.wait_for(file_map, lambda m: "ro2" in m.values())
    moved = {f: (before[f], after[f]) for f in before if before[f] != after.get(f)}
    display(show.table(panel.segment_rows(after, ["ro1", "ro2"]),
                       title=f"after adding ro2: {len(moved)} files moved"))

# %%
status_after, results = walkthrough.retry_search(client, COLLECTION, cfg.topk, queries, params={"nprobe": 16})
recall_after = walkthrough.recall(walkthrough.result_ids(results), truth_ids)
print("with ro2:" if ext is None else "again:", status_after, "| recall against brute force:", recall_after)

# %% [markdown]
# ## A read node fails while clients search
#
# A thread searches through the router back to back (each answer checked against brute force).
# Meanwhile `ro1` is killed with SIGKILL, as a crashed host would vanish; the router sees the
# failure, sends ro1's files to ro2 and suspends ro1. Then ro1 is started again and its files
# move back to it.

# %%
#papermill_description=fault_demo
if ext is not None:
    print(existing_view.SKIPPED["fault"])
else:
    loop = faults.SearchLoop(lambda: cluster.connect(router), COLLECTION, queries, truth_ids, cfg.topk,
                             params={"nprobe": 16}).start("ro1 and ro2 up")
    loop.phase("ro1 and ro2 up", settle_s=0.5)
    os.kill(ro1["pid"], signal.SIGKILL)  # kill -9 <pid of ro1>
    loop.phase("ro1 killed", settle_s=0.2)
    during = walkthrough.wait_for(file_map, lambda m: "ro1" not in m.values())
    loop.phase("ro1 down, its files on ro2", settle_s=FAULT_SECONDS)
    killed_at = f"{ro1['host']}:{ro1['port']}"
    ro1 = cluster.start_node(lab, "ro1", role="ro")  # restart: the same port when free, the same mount
    back = walkthrough.wait_for(file_map, lambda m: "ro1" in m.values())
    loop.phase("ro1 restarted", settle_s=0.5)
    searches = loop.stop()
    fault_rows = faults.phase_summary(searches)
    print(f"ro1 was killed at {killed_at} and restarted at {ro1['host']}:{ro1['port']}")
    display(show.table(fault_rows, title="searches through the router, by phase"))

# %%
if ext is None:
    display(show.table([{"file": f, "before the fault": after[f], "ro1 down": during.get(f),
                         "ro1 restarted": back.get(f)} for f in sorted(after)],
                       title="which node searched each segment file"))

# %%
if ext is None:
    fig = figures.file_node_figure({"1 read node": before, "2 read nodes": after, "ro1 killed": during,
                                    "ro1 restarted": back})
    fig = labkit.savefig(fig, "04_file_node_map", out)

# %% [markdown]
# ## Cluster panel

# %%
panel.cluster_panel(lab, file_map=file_map) if ext is None else print(existing_view.SKIPPED["panel"])

# %% [markdown]
# ## Exercises
#
# ### Exercise 4.1: add ro3, but predict first
# Pick a free port for a third read node, compute with `Ring` (from `labkit.router.ring`) over the
# read nodes' addresses which node each file goes to once ro3 joins, then start ro3 on that port
# (`cluster.start_node(lab, "ro3", role="ro", port=port)`) and compare with the router's own map.
# Stop ro3 afterwards (`cluster.stop_node(lab, "ro3", purge=True)`, `lab.umount("ro3")`).
#
# **What you should see:** your prediction equals the router's map; only the files on the arcs ro3
# takes move, every one of them to ro3; after ro3 stops the map is the one you started from.
#
# The solution is the next cell, collapsed: click the dotted bar to open it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 4.1
if ext is not None:
    print(existing_view.SKIPPED["ro3"])
else:
    port = free_port()
    nodes = {**views.read_nodes(lab), f"127.0.0.1:{port}": "ro3"}  # host:port -> node name
    ring = Ring(nodes)
    predicted = {f: nodes[ring.node_for(f)] for f in back}
    cluster.start_node(lab, "ro3", role="ro", port=port)
    seen = walkthrough.wait_for(file_map, lambda m: "ro3" in m.values())
    print(f"predicted {sum(n == 'ro3' for n in predicted.values())} files for ro3; the router gave it "
          f"{sum(n == 'ro3' for n in seen.values())}; prediction right: {predicted == seen}")
    cluster.stop_node(lab, "ro3", purge=True)
    lab.umount("ro3")
    restored = walkthrough.wait_for(file_map, lambda m: m == back)
    assert predicted == seen and all(seen[f] in (back[f], "ro3") for f in back)

# %% [markdown]
# ### Exercise 4.2: where do writes go?
# Through the router, insert 10 new vectors (ids from `10**6`) and flush. Then ask three places for
# `count_entities`: the router, the rw node directly and ro1 directly.
#
# **What you should see:** all three report 10 more rows than before: the router forwarded the
# insert and the flush to `WOSERVER` (the rw node), and ro1 sees the new segment through MySQL and
# its JuiceFS mount.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 4.2
count_before = client.count_entities(COLLECTION)[1]
extra = walkthrough.vectors(10, cfg.dim, SEED + 6)
print("insert:", client.insert(COLLECTION, records=extra.tolist(), ids=list(range(10**6, 10**6 + 10)))[0])
print("flush:", client.flush([COLLECTION]))
counts = {name: Milvus(host=rec["host"], port=rec["port"]).count_entities(COLLECTION)[1]
          for name, rec in (("router", router), ("rw", rw), ("ro1", ro1))}
print(f"before: {count_before}; now: {counts}")
assert set(counts.values()) == {count_before + 10}

# %% [markdown]
# ## Summary
#
# - The router answers on one address, forwards writes to the rw node (`WOSERVER`) and splits
#   searches over the read nodes by segment file, reading the file lists from MySQL (the lab's
#   router again only after the rw node reports a change).
# - Routed results equal brute-force ground truth before and after a read node joined, and while
#   a read node was killed: its files went to the other read node and came back after the restart.
# - Next: **05** compares storage back ends, **06** measures the first query; **99_teardown** stops
#   everything.

# %% tags=["check"]
assert status.OK() and recall_before == 1.0
assert status_after.OK() and recall_after == 1.0
if ext is not None:  # an existing cluster: what was shown is the routed search and, if reported, the map
    read_names = {r["name"] for r in ext.ro} or {"rw"}
    assert before is None or (before and set(before.values()) <= read_names), before
    metrics = labkit.record_metrics("04_mishards", {
        "existing_cluster": ext.source, "router_port": router["port"], "files": len(before or {}),
        "recall_before": recall_before, "recall_after": recall_after}, out)
else:
    assert set(before.values()) == {"ro1"} and set(before) == set(after)
    assert moved and all(new == "ro2" for _, new in moved.values())
    down = [r for r in searches if r["phase"] in {"ro1 killed", "ro1 down, its files on ro2"}]
    assert down and all(r["ok"] and r["recall"] == 1.0 for r in searches), fault_rows
    assert set(during.values()) == {"ro2"} and "ro1" in back.values()
    assert back == after or killed_at != f"{ro1['host']}:{ro1['port']}"  # same address: the same files
    metrics = labkit.record_metrics("04_mishards", {
        "router_port": router["port"], "files": len(after), "moved": len(moved),
        "recall_before": recall_before, "recall_after": recall_after, "searches_during_fault": len(down),
        "lowest_recall_during_fault": min(r["recall"] for r in down)}, out)
