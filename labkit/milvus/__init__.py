"""Milvus 1.1 facts shared by the lab node and the router, each written once: protobuf messages,
status codes, file types and enums, the partition-tag matcher, the top-k merge, reply encoders
and the metadata row fingerprint."""
