"""Example application functions that use a rotated secret (not rotators)."""
