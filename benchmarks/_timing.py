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


def interleaved_median_times(fns, repeat):
    """Median wall times of the calls ``fns[0](), fns[1](), ...`` made in turn ``repeat``
    times (after one warm-up round): a baseline and the code it is compared with see the
    same machine state, so their ratio does not move with the machine's speed over the
    run (which varies by ~15 % between minutes on the 2-core machine)."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    for _ in range(repeat):
        for fn, t in zip(fns, ts):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in ts]
