"""Lab services: MySQL, Redis, object store, JuiceFS, Milvus nodes, router."""
