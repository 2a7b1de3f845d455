# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 99 · Teardown: stop everything
#
# Stops the router, the nodes, the JuiceFS mounts, Redis, MySQL and the object store, by the PIDs
# the lab recorded, then checks that no process or mount of the lab remains. The same as
# `labkit down` on the command line. Data stays on disk unless `PURGE` is true (then the next run
# starts from scratch).
#
# **Prerequisites:** none. **Time:** a few seconds.

# %%
import labkit
from labkit.lab import Lab
from labkit.nb import panel, show, views

env_ok = labkit.check_env(strict=True).ok  # one sentence if something required is missing (table: 00)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root
PURGE: bool = False  # also delete the lab data: MySQL, Redis, objects, mounts

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
print(f"SIZE={cfg.size}, PURGE={PURGE}")

# %%
lab = Lab()
show.table(panel.service_rows(lab.status()), panel.SERVICE_COLUMNS, title="before")

# %%
#papermill_description=down
lab.down(purge=PURGE)
left = views.leftovers(lab.home)
show.table([{"kind": k, "left": len(v), "items": "; ".join(v)} for k, v in left.items()], title="after")

# %% [markdown]
# ## Summary
#
# - Every recorded service was stopped by PID; no lab process or mount remains.
# - Run `01_mysql_metadata` (or `labkit up`) to bring the lab back; data survives unless purged.

# %% tags=["check"]
assert left == {"processes": [], "mounts": []}, left
assert not [s for s in lab.status() if s.healthy and s.pid]
metrics = labkit.record_metrics("99_teardown", {"purged": PURGE}, out)
