"""Milvus 1.1 defaults shared by node, router and lab: version, ports, the default partition."""

from __future__ import annotations

VERSION = "1.1.1"  # what `server_version` answers; pymilvus 1.1.2 only talks to 1.1.x servers
DEFAULT_PORT = 19530  # gRPC (server_config.yaml network.bind.port; Mishards' port)
HTTP_PORT = 19121  # network.http.port
DEFAULT_TAG = "_default"  # the collection's own partition
NAME_LIMIT = 255  # longest collection name or partition tag
