"""Benchmarks and evaluators (top floor): they drive the daemon, the synthetic microscope and
models from outside, so none of this ships inside the daemon's package."""
