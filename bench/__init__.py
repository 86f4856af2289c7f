"""Benchmarks: `python -m bench.<name>`; each prints progress to stderr and one JSON line last on stdout.
Figures and how they were taken: bench/README.md."""
