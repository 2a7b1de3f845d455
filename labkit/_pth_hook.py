"""Imported from ``labkit-milvus-compat.pth`` at interpreter start: keep it tiny.

Registers the finder that lets pymilvus 1.1.2 import on protobuf >= 4 (see compat).
Set LABKIT_NO_COMPAT_HOOK=1 to see pymilvus's own behaviour.
"""

import os

if not os.environ.get("LABKIT_NO_COMPAT_HOOK"):
    from labkit.milvus.proto import install

    install()
