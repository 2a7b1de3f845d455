"""The published JuiceFS / EFS / S3FS figures (juicedata/juicefs docs), shipped as data.

They are quoted beside the local runs and always carry the label "published, not measured here".
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "published_storage.json"

# Metadata operations in the order of the article's chart (mdtest's phases).
MD_OPS: tuple[str, ...] = (
    "dir_create", "dir_stat", "dir_remove",
    "file_create", "file_stat", "file_open_close", "file_remove",
    "tree_create", "tree_remove",
)


@lru_cache(maxsize=1)
def published() -> dict[str, Any]:
    """The whole data file: label, source, ``fio`` and ``mdtest`` tables."""
    return json.loads(DATA_FILE.read_text())


def published_ratios(section: str, num: str = "JuiceFS", den: str = "EFS") -> dict[str, float]:
    """Published ``num``/``den`` per metric of ``section`` ("fio" or "mdtest")."""
    systems = published()[section]["systems"]
    return {k: round(v / systems[den][k], 2) for k, v in systems[num].items() if systems[den].get(k)}
