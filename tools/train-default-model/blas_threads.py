"""Imported by every script here before numpy and torch load OpenBLAS: torch already runs one thread per core, and a
multithreaded OpenBLAS under each of them oversubscribes the cores. On 2 cores a transformer forward and backward took
1.0 s with OpenBLAS's threads and 0.62 s without (the first v2 design, batch 16), 0.42 s and 0.20 s (the second,
batch 32) (measured 2026-12-04). An OPENBLAS_NUM_THREADS already set in the environment wins."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
