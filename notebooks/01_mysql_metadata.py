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
# **Prerequisites:** 00 (optional). **Time:** about 10 minutes with the exercises; the cells run in
# a few seconds (about 20 s the first time, while MariaDB initialises its data directory).
#
# **Read along:** the article's Step 1; Milvus 1.1,
# [Manage metadata with MySQL](https://milvus.io/docs/v1.1.0/data_manage.md).

# %%
import pymysql

import labkit
from labkit.lab import Lab
from labkit.nb import panel, show
from labkit.node.meta import Meta

env_ok = labkit.check_env(strict=True).ok  # one sentence if something required is missing (table: 00)

# %% tags=["parameters"]
SIZE: str = ""  # ci, small or full; empty: LABKIT_SIZE, else small
SEED: int = 0  # seed of the random vectors
OUT_DIR: str = ""  # figures and metrics; empty: artifacts folder at the repo root

# %%
cfg = labkit.config(SIZE)
out = OUT_DIR or None
print(f"SIZE={cfg.size}")

# %% [markdown]
# ## Step 1 in the article
#
# > **Step 1: Start the MySQL service.** Start the MySQL service on **any** node in the cluster. For
# > details, see [Managing metadata with MySQL](https://milvus.io/docs/v1.1.0/data_manage.md).
#
# — *Building a Milvus Cluster Based on JuiceFS*, Milvus blog, 2021 (Japanese edition, translated)
#
# The article gives **no command** for this step: it leaves the installation to the linked Milvus
# page. The lab runs MariaDB (MySQL-compatible) as a plain process on 127.0.0.1, with its data
# directory in the lab home, a `milvus` database and a `milvus` user whose password is generated for
# this lab. The command it runs:

# %%
#papermill_description=mysql
lab = Lab()
lab.check()  # bad settings or missing programs are reported before anything starts
mysql = lab.service("mysql").ensure()  # idempotent: a healthy server is reused
print("\n".join(lab.commands()["mysql"]))
show.table(panel.service_rows(s for s in lab.status() if s.kind == "mysql"), panel.SERVICE_COLUMNS)

# %% [markdown]
# ## The `meta_uri` line of every node's server_config.yaml
#
# The article's `general` section beside the lab's. The lab differs in the user (`milvus` with a
# generated password rather than `root:milvusroot`), the host (127.0.0.1: all nodes are on this
# machine) and the port (3306 when free, else another one).

# %%
article_general = """\
# meta_uri is the URI for metadata storage, using MySQL (for Milvus Cluster).
# Format: mysql://<username:password>@host:port/database
general:
  timezone: UTC+8
  meta_uri: mysql://root:milvusroot@host:3306/milvus"""
lab_general = lab.state.mask(f"general:\n  timezone: UTC+8\n  meta_uri: {lab.meta_uri()}")
show.side_by_side("the article (server_config.yaml)", article_general,
                  "this lab (password masked)", lab_general)

# %% [markdown]
# ## The tables Milvus keeps in MySQL
#
# When a Milvus 1.1 node starts it creates its tables if they are missing (`MySQLMetaImpl`
# does it at initialisation). Notebook 03 starts the first node; here the lab's node code creates the
# same tables now, so you can look at them before any node runs:

# %%
meta = Meta(lab.meta_uri(), lab.home)  # the storage path is only used with sqlite
meta.create_schema()
meta.close()

# %% [markdown]
# ## Ask MySQL yourself
#
# Plain `pymysql`, with the connection settings the lab generated (the nodes use the same ones).
# `Tables` has one row per collection or partition, `TableFiles` one row per segment file.

# %%
params = lab.mysql_params()
conn = pymysql.connect(host=params["host"], port=params["port"], user=params["user"],
                       password=params["password"], database=params["database"], autocommit=True)
with conn.cursor() as cur:
    cur.execute("SELECT VERSION(), CURRENT_USER(), DATABASE()")
    version, user, database = cur.fetchone()
    cur.execute("SHOW TABLES")
    tables = sorted(name for (name,) in cur.fetchall())
    cur.execute("SELECT table_id, dimension, index_file_size, metric_type FROM Tables")
    collections = cur.fetchall()
    cur.execute("SELECT COUNT(*) FROM TableFiles")
    (file_rows,) = cur.fetchone()
print(f"server {version}, connected as {user} to database {database}")
print("tables:", ", ".join(tables))
print(f"collections: {len(collections)} (0 on a fresh lab); TableFiles rows: {file_rows}")

# %% [markdown]
# ## Exercises
#
# ### Exercise 1.1: where does a segment file live?
# Run `DESCRIBE TableFiles` with the connection `conn` above. Which columns, put together, name
# the directory of a segment file under `<storage.path>/db/tables/`?
#
# **What you should see:** columns `id`, `table_id`, `segment_id`, `file_id`, `file_type`,
# `file_size`, `row_count`, ... A segment lives in `db/tables/<table_id>/<segment_id>/` and each of
# its files is named after `file_id` (you will find them on JuiceFS in notebook 03).
#
# The solution is the next cell, collapsed: click the dotted bar to open it.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 1.1
with conn.cursor() as cur:
    cur.execute("DESCRIBE TableFiles")
    columns = [row[0] for row in cur.fetchall()]
print(columns)
assert {"table_id", "segment_id", "file_id", "file_type"} <= set(columns)

# %% [markdown]
# ### Exercise 1.2: what may the `milvus` user do?
# Ask MySQL for the user's grants (`SHOW GRANTS`), then try to create another database called
# `not_milvus` and read the error MySQL returns.
#
# **What you should see:** one grant of all privileges on `` `milvus`.* `` (plus the usage grant with
# a masked password hash), and error **1044 Access denied** for `CREATE DATABASE`: the nodes can
# change Milvus' tables and nothing else on the server.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 1.2
import re

with conn.cursor() as cur:
    cur.execute("SHOW GRANTS")
    grants = [re.sub(r"PASSWORD '[^']*'", "PASSWORD '****'", row[0]) for row in cur.fetchall()]
    try:
        cur.execute("CREATE DATABASE not_milvus")
        refused = None
    except pymysql.err.OperationalError as exc:
        refused = exc.args
print("\n".join(grants))
print("CREATE DATABASE not_milvus ->", refused)
assert refused and refused[0] == 1044

# %% [markdown]
# ## Summary
#
# - MariaDB runs on 127.0.0.1 with a `milvus` database and user; every node's `server_config.yaml`
#   gets the same `meta_uri` line.
# - Milvus 1.1 keeps four tables there: `Tables` (collections and partitions), `TableFiles`
#   (segment files), `Environment` and `Fields`.
# - Next: **02_juicefs_format_and_mount** creates the shared file system.

# %% tags=["check"]
conn.close()
assert database == "milvus" and user.startswith("milvus@")
assert {"Tables", "TableFiles", "Environment"} <= set(tables)
assert lab.meta_uri().startswith("mysql://") and lab.meta_uri().endswith("/milvus")
assert params["password"] not in lab_general and "****" in lab_general
assert params["password"] not in "\n".join(lab.commands()["mysql"])
metrics = labkit.record_metrics("01_mysql_metadata", {"mysql_version": version, "milvus_tables": len(tables),
                                                      "collections": len(collections)}, out)
