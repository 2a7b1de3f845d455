# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Overview: a Milvus 1.x cluster on JuiceFS
#
# This lab rebuilds, on this one machine, the cluster of the article *Building a Milvus cluster
# based on JuiceFS*: MySQL holds Milvus' metadata, JuiceFS (Redis + an object store) is mounted on
# every node, one **read-write** Milvus node writes segments, **read-only** nodes search them, and
# the **Mishards** router spreads searches over the read nodes.
#
# Each notebook is one step of the article, run for real and checked at the end:
#
# | notebook | step |
# |---|---|
# | 01 | MySQL: the `milvus` metadata database |
# | 02 | JuiceFS: Redis + object store, `juicefs format`, one mount per node |
# | 03 | Milvus rw and ro nodes on the shared JuiceFS path |
# | 04 | Mishards: one address for the whole cluster |
# | 05, 06 | storage comparison and first-query benchmark |
# | 99 | teardown |
#
# **Prerequisites:** none (this notebook starts nothing). **Time:** under a minute.
# **System:** Linux, 2 cores, 2 GB RAM; FUSE (`/dev/fuse`) for real JuiceFS mounts. Without FUSE
# (Binder) the nodes share one local directory and every notebook says so.

# %%
import labkit
from labkit.lab import Lab
from labkit.nb import figures, overview, show

report = labkit.check_env()  # versions, services, FUSE, memory: says what is missing and how to get it
print(report)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
cfg

# %% [markdown]
# ## The cluster
#
# The figure is drawn by `labkit.nb.figures.architecture_figure` from the same layout the lab starts:
# one rw node, `cfg.ro_nodes` read nodes, one JuiceFS client per node.

# %%
fuse = overview.fuse_mode(report.fuse)
print(overview.storage_sentence(fuse))
fig = labkit.savefig(figures.architecture_figure(cfg.ro_nodes, fuse=fuse), "00_architecture", out)

# %% [markdown]
# ## What will run where
#
# Everything runs on this machine and listens on 127.0.0.1 only; ports are picked free at start
# (the router takes 19530, Milvus' default, when nobody else has it). The lab's data, logs, mounts
# and the `state.json` that lets every notebook find the running services live in the lab home:

# %%
print("lab home:", Lab().home)
placement = show.table(overview.placement_rows(cfg, fuse), title="processes the lab starts")
placement

# %% [markdown]
# ## How long each notebook takes
#
# Estimates for SIZE=small on 2 cores; `last_run_s` is filled in from the executed copies in
# `artifacts/` once `labkit run` (or the tests) have run the notebooks.

# %%
times = show.table(overview.notebook_rows(), title="notebooks")
times

# %% [markdown]
# ## Summary
#
# - The cluster has four layers: client → router → Milvus nodes → JuiceFS (Redis + object store),
#   with MySQL beside them for Milvus' metadata.
# - `labkit.check_env()` reported what this machine can run; anything marked missing comes with the
#   command that installs it.
# - Next: **01_mysql_metadata** starts the storage services.

# %% tags=["check"]
assert report.ok, "the machine lacks something the lab needs (see the table above)"
assert sum(r["process"].startswith("labkit.node") for r in placement.rows) == 1 + cfg.ro_nodes
assert (labkit.nb.artifacts.artifacts_dir(out) / "00_architecture.png").is_file()
assert any(r["notebook"].startswith("01_") for r in times.rows)
labkit.record_metrics("00_overview", {"fuse": fuse, "size": cfg.size, "checks_missing": len(report.missing()),
                                      "processes": len(placement)}, out)
