"""Shared rotation core: the Secrets Manager protocol, strategies, passwords, TLS and logging.

Nothing in this package imports a database driver; engines live in ``rotators``.
"""
