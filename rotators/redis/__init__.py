"""Redis and Valkey ACL users (``engine``: ``redis``, ``valkey``); ElastiCache and MemoryDB
users (AWS's ElastiCache format, with ``user_arn``)."""
