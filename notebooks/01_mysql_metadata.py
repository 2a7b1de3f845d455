# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · MySQL: the metadata of the Milvus cluster
#
# In a Milvus 1.x cluster every node reads and writes the same metadata: which collections exist
# and which segment files (`TableFiles` rows) hold their vectors. The article runs MySQL on one of
# the hosts and points every node's `server_config.yaml` at it with `general.meta_uri`.
#
# Here `Lab().up()` starts the lab's storage: MariaDB (MySQL-compatible) with a `milvus` database
# and user, and also Redis, the object store and the JuiceFS volume used in notebook 02. It is
# idempotent: running it again reuses what is healthy and repairs what is not.
#
# **Prerequisites:** 00 (optional). **Time:** about 30 s the first time, a second after.

# %%
import labkit
from labkit.lab import Lab
from labkit.nb import overview, panel, show, views

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
# ## Start the storage services

# %%
#papermill_description=lab_up
lab = Lab()
lab.up()
print(overview.storage_sentence(lab.fuse))
show.table(panel.service_rows(lab.status()), panel.SERVICE_COLUMNS, title="lab services")

# %% [markdown]
# ## The article's command and the one run here
#
# The article starts MySQL 5.7 in Docker and creates the database by hand. The lab runs MariaDB as
# a plain process with its data under the lab home (passwords are generated per lab and masked):

# %%
article = """docker run -d --name mysql -p 3306:3306 -e MYSQL_ROOT_PASSWORD=123456 mysql:5.7
mysql -h 127.0.0.1 -uroot -p123456 -e 'create database milvus'"""
show.side_by_side("the article", article, "run here", "\n".join(lab.commands()["mysql"]))

# %% [markdown]
# ## The `meta_uri` line for server_config.yaml
#
# Every node of the cluster gets this same line (the password is masked when shown):

# %%
meta_line = lab.state.mask(f"general:\n  meta_uri: {lab.meta_uri()}")
show.Text(meta_line, "server_config.yaml")

# %% [markdown]
# ## Connect with pymysql, as the nodes will

# %%
params = lab.mysql_params()
who = views.mysql_query(params, "SELECT VERSION() AS version, CURRENT_USER() AS user, DATABASE() AS db")
show.table(who)

# %%
databases = [r["Database"] for r in views.mysql_query(params, "SHOW DATABASES")]
tables = [next(iter(r.values())) for r in views.mysql_query(params, "SHOW TABLES")]
print("databases:", databases)
print("tables in milvus:", tables or "none yet (the first Milvus node creates Tables, TableFiles, ...)")

# %% [markdown]
# What the lab's `milvus` user may do (all on the `milvus` database, nothing else):

# %%
grants = views.mysql_grants(params)
show.Text("\n".join(grants), "SHOW GRANTS")

# %% [markdown]
# ## Summary
#
# - MariaDB runs on 127.0.0.1 with a `milvus` database and user; the same `meta_uri` goes into
#   every node's `server_config.yaml`.
# - pymysql connects with the lab's generated credentials; Milvus creates its own tables
#   (`Tables`, `TableFiles`, `Environment`) when the first node starts, in notebook 03.
# - Next: **02_juicefs_format_and_mount**.

# %% tags=["check"]
assert "milvus" in databases
assert any("`milvus`.*" in g for g in grants)
assert who[0]["db"] == "milvus"
assert lab.meta_uri().startswith("mysql://") and lab.meta_uri().endswith("/milvus")
assert params["password"] not in meta_line and "****" in meta_line
labkit.record_metrics("01_mysql_metadata", {"mysql_version": who[0]["version"], "milvus_tables": len(tables),
                                            "services_healthy": sum(s.healthy for s in lab.status())}, out)
