"""Benchmarks: each module returns plain data (dicts) and has ``cli(argv)`` printing JSON."""
