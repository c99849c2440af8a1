"""Documented helper scripts (schema creation, CI integration, demo); each runs as `python scripts/X.py`."""
