"""The Milvus 1.1 lab node: wire-compatible gRPC server on MySQL metadata and shared segments."""
