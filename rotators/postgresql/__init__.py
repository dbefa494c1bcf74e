"""PostgreSQL and Aurora PostgreSQL (``engine``: ``postgres``, ``aurora-postgresql``)."""
