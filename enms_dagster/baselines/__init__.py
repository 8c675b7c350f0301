"""Energy baselines: regressions of energy on its drivers, their registry and performance."""
