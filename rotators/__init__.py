"""One package per database engine: database operations and a thin Lambda handler."""
