# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · JuiceFS: format the volume, one mount per node
#
# Milvus nodes in the article share their `db/` directory through JuiceFS: file metadata lives in
# **Redis**, file data in an **object store** (the article: Azure Blob). Each host runs its own
# JuiceFS client (`juicefs mount`), so the rw node's segment files show up on every ro node.
#
# This notebook formats the volume, mounts it once per node (each mount with its own cache and
# metrics port, as separate hosts would have), lists the clients with `juicefs status`, and checks
# JuiceFS' close-to-open consistency: a file written and closed through one mount is read, intact,
# through another.
#
# **Prerequisites:** 01. **Time:** under a minute. **System:** FUSE for real mounts; without it
# the nodes share one local directory (said below).

# %%
import labkit
from labkit.lab import Lab
from labkit.nb import figures, overview, panel, show, views, walkthrough

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

# %%
#papermill_description=lab_up
lab = Lab()
lab.up()
print(overview.storage_sentence(lab.fuse))
show.table(panel.service_rows(s for s in lab.status() if s.kind in {"redis", "objectstore", "juicefs"}),
               panel.SERVICE_COLUMNS)

# %% [markdown]
# ## `juicefs format`: the article's command and the one run here
#
# The article formats against Azure Blob (`--storage wasb`, credentials in
# `AZURE_STORAGE_CONNECTION_STRING`) and a remote Redis. The lab uses a local Redis and a local
# object store; the shape of the command is the same:

# %%
article = """export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=...;AccountKey=..."
juicefs format --storage wasb --bucket https://<container> redis://<user>:<password>@<redis-host>:6379/1 test
juicefs mount -d redis://<user>:<password>@<redis-host>:6379/1 ~/jfs"""
show.side_by_side("the article (Azure Blob)", article, "run here (masked)", "\n".join(lab.commands()["juicefs"]))

# %% [markdown]
# ## One mount per node

# %%
#papermill_description=mounts
mounts = {name: lab.mount(name) for name in overview.node_names(cfg)}
show.table(views.mount_rows(mounts), title="each node's data directory")

# %%
show.Text("\n".join(views.service_commands(lab, "mount")) or "(no JuiceFS clients: shared directory)",
              "the mount commands")

# %% [markdown]
# ## `juicefs status`
#
# The volume's settings and one session per JuiceFS client. (Without FUSE there are no clients.)

# %%
status = lab.volume().juicefs_status()
sessions = views.session_rows(status)
show.table(views.setting_rows(status), title="volume settings")

# %%
show.table(sessions, title="client sessions (one per mounted node)")

# %% [markdown]
# ## Write on one mount, read on another
#
# The rw node will write segment files and the ro nodes will open them. JuiceFS guarantees
# *close-to-open* consistency: once the writer closes a file, any later `open` on another client
# sees the new content. Timed:

# %%
#papermill_description=cross_mount
size_mb = max(4, cfg.fio_size_mb // 4)
trip = walkthrough.cross_mount_roundtrip(mounts["rw"], mounts["ro1"], size_mb)
show.table([trip], ["bytes", "write_close_s", "open_read_s", "write_MiB_s", "read_MiB_s", "same_content"])

# %%
fig = figures.bar_figure({"write + close (rw mount)": trip["write_close_s"],
                        "open + read (ro1 mount)": trip["open_read_s"]}, f"{size_mb} MiB across two mounts")
labkit.savefig(fig, "02_cross_mount", out)

# %% [markdown]
# ## Summary
#
# - The volume `milvus-jfs` keeps metadata in Redis and data blocks in the object store.
# - Every node has its own data directory: a JuiceFS client each with FUSE, one shared local
#   directory without it.
# - A file written and closed on the rw mount was read, byte for byte, on the ro1 mount.
# - Next: **03_milvus_rw_ro** puts Milvus nodes on these mounts.

# %% tags=["check"]
assert trip["same_content"], "the reader did not see what the writer closed"
assert len(mounts) == 1 + cfg.ro_nodes
assert status["Setting"]["Name"]
if lab.fuse:
    assert {str(p) for p in mounts.values()} <= {s["mount point"] for s in sessions}
else:
    assert len({str(p) for p in mounts.values()}) == 1  # one shared directory
labkit.record_metrics("02_juicefs_format_and_mount", {"fuse": lab.fuse, "mounts": len(mounts),
                      "sessions": len(sessions), **{k: trip[k] for k in ("bytes", "write_close_s", "open_read_s")}},
                      out)
