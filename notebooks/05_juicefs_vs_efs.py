# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · JuiceFS vs EFS (and S3FS): the storage comparison, reproduced
#
# > Benchmark tests show that JuiceFS has a large advantage over EFS. In the metadata benchmark
# > (Figure 1), JuiceFS's I/O operations per second (IOPS) are up to 10 times those of EFS. In the I/O
# > throughput benchmark (Figure 2), JuiceFS outperforms EFS in both single-job and multi-job scenarios.
#
# — *Building a Milvus Cluster Based on JuiceFS*, Milvus blog, 2021 (Japanese edition, translated);
# the figures come from JuiceFS's published benchmarks (juicedata/juicefs, `docs/en/benchmark/`).
#
# This notebook re-runs the *method* on this machine:
#
# * **throughput**: fio sequential write (`--end_fsync=1`) and read, 4M blocks, 1 job and N jobs;
#   the page cache is dropped before each read (when root) and the JuiceFS client cache is evicted
#   (`juicefs warmup --evict`), so reads are cold;
# * **metadata**: mdtest-style directory create/stat/remove, file create/stat/open-close/remove,
#   tree create/remove, with a pause longer than FUSE's 1 s attribute cache between phases;
# * **targets**: local disk (the upper bound), JuiceFS on the file object store, JuiceFS on an S3
#   emulator (moto), **s3fs on the same S3 emulator** (the article's S3FS column), bindfs (FUSE
#   passthrough: what FUSE alone costs), and any directory you pass in `PATHS` (a real EFS/NFS mount).
#
# **EFS cannot be reproduced on this machine.** EFS is a managed NFS service that exists only inside
# AWS, and this kernel has no NFS client. The EFS (and original S3FS / JuiceFS) figures are therefore
# the **published** ones, drawn hatched and labelled *published, not measured here*. To measure real
# EFS, run this notebook on an EC2 VM with EFS mounted and set `PATHS = "efs=/mnt/efs"` (or run
# `labkit bench storage --size small --path efs=/mnt/efs --json`).
#
# **Prerequisites:** none of the earlier notebooks: the benchmark starts its own scratch Redis, moto
# S3 emulator and mounts, and removes them at the end. FUSE (root or `/dev/fuse` access) for the
# mounted targets; without it they are listed as skipped with the reason. **Time:** about 15
# minutes with the exercise; the benchmark runs about a minute at `ci` size, a few at `small`.

# %%
import labkit
from labkit.bench import storage
from labkit.nb import bench_summary, show
from labkit.nb.bench_figures import plot_metadata, plot_throughput

env_ok = labkit.check_env(strict=True).ok  # one sentence if something required is missing (table: 00)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full (file sizes, job count, item counts); empty: LABKIT_SIZE, else small
TARGETS: str = "local,juicefs-file,juicefs-s3,s3fs-s3,bindfs"  # built-in targets to measure
PATHS: str = ""  # extra directories to measure, comma separated (see the EFS note above)
PAUSE_S: float = 1.1  # seconds between metadata phases (longer than the 1 s attribute cache)
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
targets = [t for t in TARGETS.split(",") if t]
paths = [p for p in PATHS.split(",") if p]
print(f"fio: {cfg.fio_size_mb} MiB per job, 1 and {cfg.fio_jobs} jobs; "
      f"metadata: {cfg.md_items} items per phase")

# %% [markdown]
# ## Run the benchmark
#
# Each target is set up (formatted, mounted), measured, and torn down. s3fs creates only ~15 entries
# per second on the emulator, so, like the published run (344 items on S3FS against 12,440 on EFS and
# JuiceFS), it gets a tenth of the items; the ops/s stay comparable.

# %%
#papermill_description=storage-benchmark
result = storage.run_storage(SIZE, targets, paths, pause_s=PAUSE_S)
saved = storage.save_json(result, "05_storage", out)
skipped = bench_summary.skipped_rows(result)
show.table(skipped, title="targets not measured, and why")

# %% [markdown]
# ## Sequential throughput
#
# MiB/s per fio job set (4 MiB blocks; reads cold). The published runs used 4 GiB per job and 16
# jobs on a 72-vCPU VM with real S3; here the sizes are scaled by `SIZE` and the object store is on
# the same 2 cores, so compare **shapes and ratios**, not absolute MiB/s.

# %%
show.table(bench_summary.throughput_rows(result), title="measured here")

# %%
fig = labkit.savefig(plot_throughput(result), "05_throughput", out)

# %% [markdown]
# ## Metadata operations per second
#
# Solid bars are measured here; hatched bars are the published mdtest figures (c5.large, Redis on a
# second VM). Note the log scale. The local disk and bindfs figures for *stat* come from the kernel's
# dentry/inode caches and are an upper bound, not a like-for-like network file system.

# %%
show.table(bench_summary.metadata_rows(result), title="measured here")

# %%
fig = labkit.savefig(plot_metadata(result), "05_metadata_ops", out)

# %% [markdown]
# ## Ratios: first target / second
#
# `juicefs-s3/s3fs-s3` is the article's JuiceFS-vs-S3FS comparison on one object store;
# `juicefs-file/local` shows what the FUSE + metadata-engine path costs against the raw disk. For
# EFS, the published JuiceFS/EFS ratios. Metric names: throughput `write_1` ... `read_multi`,
# metadata operations `dir_create` ... `tree_remove`; every value is a ratio (x).

# %%
show.table(bench_summary.ratio_rows(result), title="ratios (x)")

# %% [markdown]
# ## Summary, computed from the numbers above

# %%
findings = bench_summary.storage_findings(result)
print("\n\n".join(f"- {line}" for line in findings))

# %% [markdown]
# Resources: JuiceFS benchmark docs (`docs/en/benchmark/` in juicedata/juicefs); the article;
# AWS, [choosing an EFS throughput mode](https://repost.aws/knowledge-center/efs-choosing-correct-throughput-mode).
#
# ## Exercise
#
# ### Exercise 5.1: where is the gap largest?
# From `result["ratios"]`, find the metadata operation where JuiceFS beat s3fs on the same S3
# emulator by the largest factor, and look up the published JuiceFS/EFS ratio for the same operation
# in `result["published_ratios"]["mdtest"]`.
#
# **What you should see:** an operation name and two ratios. On this kind of machine the
# JuiceFS/s3fs ratio is far larger than the published JuiceFS/EFS one: s3fs pays object requests per
# metadata operation, EFS pays NFS round trips. (If s3fs was skipped, the solution says so.)
#
# The solution is the next cell, collapsed: click the dotted bar to open it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 5.1
from labkit.bench.published import MD_OPS

pair = result["ratios"].get("juicefs-s3/s3fs-s3")
if pair:
    op = max(MD_OPS, key=lambda k: pair.get(k) or 0)
    published = result["published_ratios"]["mdtest"][op]
    print(f"{op}: JuiceFS/s3fs here {pair[op]:.1f}x; JuiceFS/EFS published {published:.1f}x")
    assert pair[op] == max(pair[k] for k in MD_OPS)
else:
    print("s3fs or JuiceFS-on-S3 was not measured here:", bench_summary.skipped_rows(result))

# %% tags=["check"]
measured = [t for t in result["targets"] if t["status"] == "measured"]
assert {t["name"] for t in result["targets"]} >= set(targets), "every requested target is listed"
for t in result["targets"]:
    assert t["status"] == "measured" or t["reason"], t  # measured, or skipped with a reason
for t in measured:
    assert all(t["throughput"][k] > 0 for k in storage.THROUGHPUT_KEYS), t["name"]
    assert len(t["metadata"]) == 9 and all(t["metadata"].values()), t["name"]
assert "local" in {t["name"] for t in measured}
if "juicefs-s3/s3fs-s3" in result["ratios"]:  # the published gap's shape: JuiceFS >> s3fs on creates
    assert result["ratios"]["juicefs-s3/s3fs-s3"]["file_create"] > 2, result["ratios"]
    assert any("s3fs" in f for f in findings)
assert result["published"]["label"] == "published, not measured here"
assert result["cleanup_problems"] == []
assert any("100 MiB/s" in f for f in findings)
metrics = labkit.record_metrics("05_juicefs_vs_efs", {
    "targets": {t["name"]: t["status"] for t in result["targets"]},
    "ratios": result["ratios"], "seconds": result["seconds"]}, out)
