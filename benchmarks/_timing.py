# SPDX-License-Identifier: Apache-2.0
"""Timing helper shared by the benchmark scripts (run them as ``python benchmarks/NAME.py``)."""

import time

import numpy as np


def median_time(fn, repeat):
    """Median wall time of ``fn()`` over ``repeat`` calls, after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))
