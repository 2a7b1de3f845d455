"""The labkit image installs every PyPI distribution that the node and the router import."""

from __future__ import annotations

import json
import subprocess
import sys

from labkit.lab import images

# what `python -m labkit.node` / `labkit.router` load, plus the optional engine and HTTP modules
PROBE = """
import importlib.metadata as md, json, sys
before = set(sys.modules)
import labkit.node.__main__, labkit.router.__main__, labkit.node.http_api, labkit.node.graph_indexes
top = {m.split(".")[0] for m in set(sys.modules) - before}
dists = md.packages_distributions()
print(json.dumps(sorted({d.lower() for m in top for d in dists.get(m, [])})))
"""


def _direct_dependencies() -> set[str]:
    import re
    import tomllib

    specs = tomllib.loads((images.REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~\[ ]", s, maxsplit=1)[0].lower() for s in specs}


def test_image_dependencies_cover_what_node_and_router_import() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    imported = set(json.loads(out.splitlines()[-1])) & _direct_dependencies()
    missing = imported - set(images.LAB_DEP_NAMES)
    assert not missing, f"the labkit image lacks {sorted(missing)}"
    assert "google-re2" in imported and "grpcio" in imported  # the probe really saw the node's imports


def test_lab_deps_take_pyproject_ranges() -> None:
    deps = images.lab_deps()
    assert len(deps) == len(images.LAB_DEP_NAMES)
    assert any(d.startswith("numpy>=") for d in deps) and any(d.startswith("google-re2") for d in deps)
