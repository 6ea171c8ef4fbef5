"""Reproducible measurements; run with ``python -m benchmarks [name ...]`` (see __main__.py)."""
