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
# JuiceFS client (`juicefs mount`), so the segment files the rw node writes show up on every ro node.
#
# This notebook starts Redis and the object store, runs `juicefs format` and explains each of its
# flags, mounts the volume once per node, looks at it with `juicefs status`, `juicefs info` and `ls`,
# and checks JuiceFS' close-to-open consistency between two mounts.
#
# **Prerequisites:** 01. **Time:** about 15 minutes with the exercises; the cells run in under a
# minute. **System:** FUSE for real mounts; without it the nodes share one local directory (said below).
#
# **Read along:** the article's Step 2; JuiceFS
# [`format`](https://juicefs.com/docs/community/command_reference#format),
# [`mount`](https://juicefs.com/docs/community/command_reference#mount),
# [cache and consistency](https://juicefs.com/docs/community/guide/cache/).

# %%
import json

import redis

import labkit
from labkit.lab import Lab
from labkit.nb import commands, figures, overview, panel, show, views, walkthrough

env_ok = labkit.check_env(strict=True).ok  # one sentence if something required is missing (table: 00)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
print(f"SIZE={cfg.size}: {len(overview.node_names(cfg))} nodes, so {len(overview.node_names(cfg))} mounts")

# %% [markdown]
# ## Redis and the object store
#
# JuiceFS needs both before `format`. Redis runs with AOF on (JuiceFS warns without it), on
# 127.0.0.1 with a generated password; the object store is a directory in the lab home (or the
# moto S3 emulator with `labkit up --object-store s3`).

# %%
#papermill_description=redis_objectstore
lab = Lab()
lab.check()
for kind in ("redis", "objectstore"):
    lab.service(kind).ensure()  # idempotent: healthy services are reused
show.table(panel.service_rows(s for s in lab.status() if s.kind in {"redis", "objectstore"}),
           panel.SERVICE_COLUMNS)

# %% [markdown]
# ## Step 2 in the article
#
# > Once Redis and the object storage are set up, format a new file system and mount JuiceFS on a
# > local directory:
# > ```
# > 1 $  export AZURE_STORAGE_CONNECTION_STRING=\
# >        "DefaultEndpointsProtocol=https;AccountName=XXX;AccountKey=XXX;EndpointSuffix=core.windows.net"
# > 2 $ ./juicefs format \
# > 3     --storage wasb \
# > 4     --bucket https://<container> \
# > 5     ... \
# > 6     localhost test #format
# > 7 $ ./juicefs mount -d localhost ~/jfs  #mount
# > ```
# > If the Redis server is not running locally, replace `localhost` with the address
# > `redis://<user:password>@host:6379/1`.
# >
# > After a successful installation, JuiceFS returns the shared storage page **/root/jfs**.
#
# — *Building a Milvus Cluster Based on JuiceFS*, Milvus blog, 2021 (Japanese edition, translated)
#
# Here the object store is local instead of Azure Blob (no cloud account needed), the metadata
# URL is the full `redis://:<password>@127.0.0.1:<port>/1` form (password masked below), and the
# volume is called `milvus-jfs` instead of `test`.
#
# ## `juicefs format`, run here

# %%
#papermill_description=juicefs_format
volume = lab.volume()
format_args = volume.format_cmd()  # the arguments the lab passes (the password travels in META_PASSWORD)
formatted = commands.juicefs(lab, format_args)
fresh = "Volume is formatted as" in formatted.output
print(formatted, end="\n\n")
print("The volume was formatted now." if fresh else
      "The volume existed already (an earlier run): with --no-update, format left its settings as they were.")

# %% [markdown]
# Every flag the lab adds, and why:

# %%
show.table(commands.flag_rows(format_args), title="juicefs format")

# %% [markdown]
# `lab.up()` now records the volume (and would repair anything of the lab that is not healthy).
# `juicefs status` reads the volume's settings back from Redis. JuiceFS splits files into blocks of
# `BlockSize` **KiB** (4096 KiB = 4 MiB, the default) and stores each block as an object.

# %%
lab.up()
status = volume.juicefs_status()
show.table(views.setting_rows(status), title="juicefs status: Setting")

# %% [markdown]
# ## One mount per node
#
# The article mounts the volume on every host with `juicefs mount -d localhost ~/jfs`. Here every
# node gets its own mount point under the lab home, each with its own client process, cache
# directory and metrics port, as separate hosts would have.

# %%
#papermill_description=mounts
print(overview.storage_sentence(lab.fuse))
mounts = {name: lab.mount(name) for name in overview.node_names(cfg)}
show.table(views.mount_rows(mounts), title="each node's data directory")

# %%
mount_lines = views.service_commands(lab, "mount") if lab.fuse else []
if lab.fuse:
    print("\n".join(mount_lines))
else:
    print(f"Skipped without FUSE: {len(mounts)} `juicefs mount` commands (one per node), `juicefs info` "
          f"and `ls` of the mounts, and the client sessions. All nodes use {mounts['rw']}.")

# %%
mount_flags = commands.flag_rows(mount_lines[0].split()) if mount_lines else []
show.table(mount_flags, title="juicefs mount (the lab's flags)")

# %% [markdown]
# ### Looking at a mount: `ls`, `juicefs info`, `juicefs status`
#
# A JuiceFS mount is an ordinary directory to Milvus. `juicefs info` shows how JuiceFS keeps a path:
# its inode, and for files, the chunks and objects in the object store.

# %%
if lab.fuse:
    listing = commands.run(["ls", "-la", str(mounts["rw"])])
    info = commands.juicefs(lab, ["info", str(mounts["rw"])])
    print(listing, info, sep="\n\n")
else:
    listing = info = None
    print("Skipped without FUSE: there is no JuiceFS mount to list or inspect.")

# %% [markdown]
# `juicefs status` lists one session per client (read-only clients are not listed):

# %%
sessions = views.session_rows(volume.juicefs_status())
show.table(sessions, title="client sessions (one per mounted node)")

# %% [markdown]
# ## Write on one mount, read on another
#
# The rw node will write segment files and the ro nodes will open them. JuiceFS guarantees
# *close-to-open* consistency: once the writer closes a file, any later `open` on another client
# sees the new content ([JuiceFS docs](https://juicefs.com/docs/community/guide/cache/)). Timed:

# %%
#papermill_description=cross_mount
size_mb = max(4, cfg.fio_size_mb // 4)
trip = walkthrough.cross_mount_roundtrip(mounts["rw"], mounts["ro1"], size_mb)
show.table([{"size (MiB)": size_mb, "write + close on rw (s)": trip["write_close_s"],
             "open + read on ro1 (s)": trip["open_read_s"], "write (MiB/s)": trip["write_MiB_s"],
             "read (MiB/s)": trip["read_MiB_s"], "same content": trip["same_content"]}])

# %%
fig = figures.bar_figure({"write + close (rw mount)": trip["write_close_s"],
                          "open + read (ro1 mount)": trip["open_read_s"]}, f"{size_mb} MiB across two mounts")
fig = labkit.savefig(fig, "02_cross_mount", out)

# %% [markdown]
# ## Exercises
#
# ### Exercise 2.1: the volume's settings live in Redis
# JuiceFS keeps the format of the volume in its metadata engine. Connect to the lab's Redis with
# `redis.Redis.from_url(lab.redis_url())`, list the keys, and read the one called `setting`.
# Compare its `Name`, `Storage`, `BlockSize` and `TrashDays` with the `juicefs status` table above.
#
# **What you should see:** a JSON document with `"Name": "milvus-jfs"`, the same storage and bucket,
# `"BlockSize": 4096` and `"TrashDays": 0`: `juicefs status` reads exactly this key. Other keys
# (`i1`, `d1`, `nextinode`, `session...`) are the file system's inodes, directories and client sessions.
#
# The solution is the next cell, collapsed: click the dotted bar to open it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 2.1
r = redis.Redis.from_url(lab.redis_url())
print(sorted(k.decode() for k in r.keys())[:12], "...")
setting = json.loads(r.get("setting"))
print({k: setting.get(k) for k in ("Name", "Storage", "Bucket", "BlockSize", "TrashDays")})
assert setting["Name"] == status["Setting"]["Name"] and setting["BlockSize"] == status["Setting"]["BlockSize"]
r.close()

# %% [markdown]
# ### Exercise 2.2: a client joins, a client leaves
# Count the client sessions with `juicefs status`, mount the volume for one more client with
# `lab.mount("visitor")` (a fourth "host"), count again, then unmount it with `lab.umount("visitor")`.
#
# **What you should see:** with FUSE, one session more while `visitor` is mounted and the first
# number again after the unmount: every mount is its own client with its own session id. Without
# FUSE there are no clients to count; the solution says so.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 2.2
before = len(volume.juicefs_status().get("Sessions") or [])
lab.mount("visitor")
during = len(volume.juicefs_status().get("Sessions") or [])
lab.umount("visitor")
after = len(volume.juicefs_status().get("Sessions") or [])
print(f"sessions: {before} -> {during} with visitor mounted -> {after} after unmounting it")
if lab.fuse:
    assert during == before + 1 and after == before
else:
    print("Without FUSE there are no JuiceFS clients: the nodes share one directory.")

# %% [markdown]
# ## Summary
#
# - `juicefs format` wrote the volume's settings to Redis; blocks of 4 MiB go to the object store.
# - Every node has its own data directory: a JuiceFS client each with FUSE, one shared local
#   directory without it.
# - A file written and closed on the rw mount was read, byte for byte, on the ro1 mount.
# - Next: **03_milvus_rw_ro** puts Milvus nodes on these mounts.

# %% tags=["check"]
assert formatted.ok, formatted
assert ("milvus-jfs" in formatted.output) == fresh and "****" not in format_args
assert trip["same_content"], "the reader did not see what the writer closed"
assert len(mounts) == 1 + cfg.ro_nodes
assert status["Setting"]["Name"] == "milvus-jfs" and status["Setting"]["TrashDays"] == 0
assert all(r["why"] != "(not explained)" for r in commands.flag_rows(format_args) + mount_flags)
if lab.fuse:
    assert {str(p) for p in mounts.values()} <= {s["mount point"] for s in sessions}
    assert listing.ok and info.ok and "inode" in info.output.lower()
else:
    assert len({str(p) for p in mounts.values()}) == 1 and not mount_lines  # one shared directory
metrics = labkit.record_metrics("02_juicefs_format_and_mount", {
    "fuse": lab.fuse, "mounts": len(mounts), "sessions": len(sessions),
    **{k: trip[k] for k in ("bytes", "write_close_s", "open_read_s")}}, out)
