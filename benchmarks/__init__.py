"""Benchmarks and data generators for stormwatch (not part of the installed package)."""
