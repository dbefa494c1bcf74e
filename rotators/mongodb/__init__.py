"""MongoDB and Amazon DocumentDB (``engine``: ``mongo``)."""
