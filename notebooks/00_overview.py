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
# This workshop rebuilds, on this one machine, the cluster of the article
# [*Building a Milvus Cluster Based on JuiceFS*](https://milvus.io/blog/building-a-milvus-cluster-based-on-juicefs.md)
# (Changjian Gao and Jingjing Jia, Milvus blog, 15 June 2021): MySQL holds Milvus' metadata, JuiceFS
# (Redis + an object store) is mounted on every node, one **read-write** Milvus node writes segments,
# **read-only** nodes search them, and the **Mishards** router spreads searches over the read nodes.
#
# Each notebook is one step of the article. It quotes what the article shows (translated from the
# Japanese edition, attributed), runs the lab's equivalent for real and shows the output, says in one
# sentence where the lab differs and why, and ends with exercises whose solutions are hidden until
# you open them.
#
# ## Contents
#
# | notebook | the article's step | workshop time |
# |---|---|---|
# | [00 Overview](00_overview.ipynb) | the architecture | 10 min |
# | [01 MySQL](01_mysql_metadata.ipynb) | Step 1: start MySQL | 10 min |
# | [02 JuiceFS](02_juicefs_format_and_mount.ipynb) | Step 2: `juicefs format`, `juicefs mount` | 15 min |
# | [03 Milvus rw/ro](03_milvus_rw_ro.ipynb) | Step 3: start Milvus | 20 min |
# | [04 Mishards](04_mishards.ipynb) | Step 4: start Mishards | 20 min |
# | [05 JuiceFS vs EFS](05_juicefs_vs_efs.ipynb) | the storage benchmarks | 15 min |
# | [06 First query](06_first_query_benchmark.ipynb) | the 0.032 s first-query result | 15 min |
# | [99 Teardown](99_teardown.ipynb) | | 5 min |
#
# What you learn in each:
#
# - **00:** what runs where; is this machine ready
# - **01:** `meta_uri`, Milvus' metadata tables, SQL on them
# - **02:** every flag, `juicefs status`/`info`, one mount per node
# - **03:** `server_config.yaml`, the `docker run` line, pymilvus calls
# - **04:** the router's settings, routed search, a read node failing
# - **05:** fio and mdtest, measured beside the published figures
# - **06:** lazy load vs preload, freshness lag
# - **99:** stop everything, leave no trace
#
# **Total: about 110 minutes** with the exercises (the minutes are `labkit.nb.overview.WORKSHOP_MIN`;
# the table at the end of this notebook adds the measured run times).
#
# **Prerequisites:** none (this notebook starts nothing). **System:** Linux, 2 cores, 2 GB RAM;
# FUSE (`/dev/fuse`) for real JuiceFS mounts. Without FUSE (Binder) the nodes share one local
# directory and every notebook says so.

# %%
import labkit
from labkit.lab import Lab
from labkit.nb import figures, overview, show

report = labkit.check_env()  # versions, services, FUSE, memory: what is missing and how to get it

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
print(f"SIZE={cfg.size}: {cfg.ro_nodes} read nodes, {cfg.rows:,} rows of {cfg.dim} dimensions")

# %% [markdown]
# ## This machine
#
# The environment is checked once, here (later notebooks only stop with a plain sentence if
# something they need is missing). Rows marked missing come with the command that installs them.

# %%
report

# %% [markdown]
# ## The cluster
#
# Drawn from the same layout the lab starts: one rw node, `cfg.ro_nodes` read nodes, one JuiceFS
# client per node. Every Milvus node and the router read MySQL: the nodes for collections and
# segment files, the router for the list of files it splits a search over.

# %%
fuse = overview.fuse_mode(report.fuse)
print(overview.storage_sentence(fuse))
fig = labkit.savefig(figures.architecture_figure(cfg.ro_nodes, fuse=fuse), "00_architecture", out)

# %% [markdown]
# ## What will run where
#
# Everything runs on this machine and listens on 127.0.0.1 only; ports are picked free at start
# (the router takes 19530, Milvus' default, when nobody else has it). The lab's data, logs, mounts
# and the `state.json` that lets every notebook find the running services live in the lab home.

# %%
print("lab home:", Lab().home)
placement = show.table(overview.placement_rows(cfg, fuse), title="processes the lab starts")
placement

# %% [markdown]
# ## How long each notebook takes
#
# Workshop minutes include reading and exercises; the run time is an estimate at SIZE=small on
# 2 cores, and `last run (s)` comes from the executed copies in `artifacts/` once `make run`
# (or the tests) have run the notebooks.

# %%
times = show.table(overview.notebook_rows(), title="notebooks")
times

# %% [markdown]
# ## Troubleshooting
#
# Each symptom, its cause, and what to do:
#
# - **`Port 3306 for mysql is already in use`**: an explicit port (`labkit up --mysql-port`) is taken.
#   Leave the port out: the lab picks a free one and every notebook finds it in `state.json`.
# - **The router is not on 19530**: another program holds 19530. Nothing to do: notebook 04 prints the
#   port it took; clients read it from the router's record.
# - **"FUSE is not available here"**: no `/dev/fuse`, or not root (Binder, most containers). The nodes
#   share one local directory; everything else runs. For real mounts: `apt-get install fuse3` on a
#   machine with `/dev/fuse`, as root.
# - **`Transport endpoint is not connected`, a mount marked STALE**: its JuiceFS client died (killed, or
#   the machine slept). `labkit up` (or re-run notebook 02): it unmounts the dead mount and mounts again.
# - **"uses the docker backend" / "keeps its JuiceFS data in s3"**: the lab was started with other
#   settings. `labkit down --purge` deletes the lab's data (MySQL, Redis, objects, mounts) and starts
#   clean; plain `labkit down` keeps it.
# - **JuiceFS cannot reach Redis: `DENIED Redis is running in protected mode`**: a Redis without a
#   password listening beyond localhost (the bootcamp tutorial's FAQ). The lab's Redis listens on
#   127.0.0.1 with a generated password, so it never happens here; on real hosts set `requirepass`
#   rather than `protected-mode no`.
# - **`Running as root is not recommended. Use --allow-root to bypass.`**: plain `jupyter lab` as root.
#   `make lab` adds `--allow-root` when it runs as root and prints the URL with its token.
# - **A cell fails with a `LabError`**: the lab says what is wrong in one sentence. Do what it says;
#   `labkit doctor` and `labkit status` show the machine and the services.
#
# ## Resources
#
# - The article: [Building a Milvus Cluster Based on JuiceFS](https://milvus.io/blog/building-a-milvus-cluster-based-on-juicefs.md)
#   and the tutorial it links, [bootcamp: deployments/juicefs](https://github.com/milvus-io/bootcamp/tree/new-bootcamp/deployments/juicefs)
# - Milvus 1.1: [Manage metadata with MySQL](https://milvus.io/docs/v1.1.0/data_manage.md),
#   [Mishards](https://milvus.io/docs/v1.1.1/mishards.md)
# - JuiceFS: [`format`](https://juicefs.com/docs/community/command_reference#format),
#   [`mount`](https://juicefs.com/docs/community/command_reference#mount),
#   [consistency and cache](https://juicefs.com/docs/community/guide/cache/)
#
# ## Summary
#
# - The cluster has four layers: client → router → Milvus nodes → JuiceFS (Redis + object store),
#   with MySQL beside them for the metadata every node and the router read.
# - `labkit.check_env()` reported what this machine can run; anything missing comes with the
#   command that installs it.
# - Next: **01_mysql_metadata** starts MySQL.

# %% tags=["check"]
assert report.ok, "the machine lacks something the lab needs (see the table above)"
assert sum(r["process"].startswith("labkit.node") for r in placement.rows) == 1 + cfg.ro_nodes
assert (labkit.nb.artifacts.artifacts_dir(out) / "00_architecture.png").is_file()
assert any(r["notebook"].startswith("01_") for r in times.rows)
assert times.rows[-1]["workshop (min)"] == sum(overview.WORKSHOP_MIN.values())
metrics = labkit.record_metrics("00_overview", {"fuse": fuse, "size": cfg.size, "processes": len(placement),
                                                "checks_missing": len(report.missing())}, out)
