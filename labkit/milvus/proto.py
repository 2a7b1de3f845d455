"""pymilvus 1.1.2 on the modern (upb) protobuf runtime.

pymilvus 1.1.2 ships protoc-3.x generated modules that build descriptors by hand
(``_descriptor.FileDescriptor(serialized_pb=...)``). protobuf >= 4 refuses that
("Descriptors cannot be created directly"). The serialized FileDescriptorProto
embedded in each of those files is still valid, so this module installs a
meta-path finder that, for ``milvus.grpc_gen.status_pb2`` and ``milvus_pb2``,
reads the original source, pulls out the ``serialized_pb`` literal (via ``ast``,
never executing the old code) and builds the module the way current protoc
output does: ``AddSerializedFile`` + ``builder``. Nothing in site-packages is
edited. The ``*_pb2_grpc`` stubs are plain grpc code and import unchanged.

The hook is registered at interpreter start by ``labkit-milvus-compat.pth``
(installed next to labkit) and can be installed explicitly with ``install()``.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TARGETS = {
    "milvus.grpc_gen.status_pb2": (),
    "milvus.grpc_gen.milvus_pb2": ("milvus.grpc_gen.status_pb2",),
}


def serialized_descriptor(source: str) -> bytes:
    """Return the FileDescriptorProto bytes embedded in an old-style *_pb2.py source."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg != "serialized_pb":
                continue
            value = kw.value
            # old protoc wraps the literal as _b('...') which is str.encode('latin1')
            if isinstance(value, ast.Call) and value.args:
                value = value.args[0]
            if isinstance(value, ast.Constant):
                data = value.value
                return data.encode("latin1") if isinstance(data, str) else bytes(data)
    raise ImportError("no serialized_pb literal found in generated protobuf module")


class _Loader(importlib.abc.Loader):
    def __init__(self, fullname: str, origin: str) -> None:
        self.fullname = fullname
        self.origin = origin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # default module creation

    def exec_module(self, module: ModuleType) -> None:
        from google.protobuf import descriptor_pool
        from google.protobuf.internal import builder

        for dep in TARGETS[self.fullname]:
            __import__(dep)
        data = serialized_descriptor(Path(self.origin).read_text(encoding="utf-8"))
        pool = descriptor_pool.Default()
        try:
            file_desc = pool.AddSerializedFile(data)
        except TypeError:  # already in the pool (module reloaded)
            file_desc = pool.FindFileByName(_file_name(data))
        ns = module.__dict__
        ns["DESCRIPTOR"] = file_desc
        builder.BuildMessageAndEnumDescriptors(file_desc, ns)
        builder.BuildTopDescriptorsAndMessages(file_desc, self.fullname, ns)


def _file_name(data: bytes) -> str:
    from google.protobuf import descriptor_pb2

    return descriptor_pb2.FileDescriptorProto.FromString(data).name


class MilvusProtoFinder(importlib.abc.MetaPathFinder):
    """Serve pymilvus 1.1.2's generated message modules from their embedded descriptors."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[override]
        if fullname not in TARGETS:
            return None
        # locate the original file with the regular path-based finder
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_Loader(fullname, spec.origin)
        )


def installed() -> bool:
    """True when the finder is on ``sys.meta_path``."""
    return any(isinstance(f, MilvusProtoFinder) for f in sys.meta_path)


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent)."""
    if not installed():
        sys.meta_path.insert(0, MilvusProtoFinder())


def protobuf_backend() -> str:
    """``upb`` (fast, C) or ``python`` (pure Python) or ``cpp``."""
    from google.protobuf.internal import api_implementation

    return api_implementation.Type()


def messages() -> tuple[ModuleType, ModuleType, ModuleType]:
    """Return ``(milvus_pb2, status_pb2, milvus_pb2_grpc)`` built on the modern runtime."""
    install()
    from milvus.grpc_gen import milvus_pb2, milvus_pb2_grpc, status_pb2

    return milvus_pb2, status_pb2, milvus_pb2_grpc
