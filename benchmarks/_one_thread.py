# SPDX-License-Identifier: Apache-2.0
"""Pin BLAS/OpenMP to one thread; import it before numpy (``import _one_thread`` first).

Sets ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` to 1 and, when
threadpoolctl is installed, limits the loaded thread pools as well.  ``THREADS`` says
which of the two is in force (the benchmarks print it).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy  # noqa: E402, F401  (load BLAS so that threadpoolctl sees its pool)

try:  # pragma: no cover - optional
    from threadpoolctl import threadpool_limits

    _LIMITS = threadpool_limits(limits=1)
    THREADS = "threadpoolctl limits=1 + OMP/OPENBLAS/MKL_NUM_THREADS=1"
except ImportError:
    THREADS = "OMP/OPENBLAS/MKL_NUM_THREADS=1 (threadpoolctl not installed)"
