"""Synthetic data for tests, benchmarks and demos. Depends only on rhip.core and standard data files."""
