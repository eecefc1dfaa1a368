"""Reproducible performance scripts; see docs/benchmarks.md. Not tests: nothing here is timed in CI."""
