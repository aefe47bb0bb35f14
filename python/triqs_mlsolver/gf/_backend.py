# SPDX-License-Identifier: Apache-2.0
"""Choice between real TRIQS and the light layer.

``TRIQS_MLSOLVER_BACKEND`` selects it:

* ``auto`` (default): real TRIQS when ``triqs.gfs`` (4.x) or ``triqs.gf``
  (3.x) and ``h5`` import, the light layer otherwise;
* ``light``: always the light layer (the test suite uses it);
* ``triqs``: real TRIQS, and an ImportError if it is missing.
"""

from __future__ import annotations

import importlib
import os

__all__ = ["BACKEND", "triqs_gf_module", "triqs_h5_module", "using_triqs"]

_choice = os.environ.get("TRIQS_MLSOLVER_BACKEND", "auto").strip().lower()
if _choice not in ("auto", "light", "triqs"):
    raise ImportError(
        f"TRIQS_MLSOLVER_BACKEND={_choice!r} is not understood; use 'auto', 'light' or 'triqs'"
    )


def _import_triqs():
    for name in ("triqs.gfs", "triqs.gf"):
        try:
            gf = importlib.import_module(name)
            h5 = importlib.import_module("h5")
            return gf, h5
        except ImportError:
            continue
    return None, None


triqs_gf_module, triqs_h5_module = (None, None) if _choice == "light" else _import_triqs()
if _choice == "triqs" and triqs_gf_module is None:
    raise ImportError(
        "TRIQS_MLSOLVER_BACKEND=triqs but neither triqs.gfs nor triqs.gf (with h5) can be "
        "imported; install TRIQS or unset the variable to use the light layer"
    )
BACKEND = "triqs" if triqs_gf_module is not None else "light"


def using_triqs() -> bool:
    """True when the real TRIQS objects are handed out."""
    return BACKEND == "triqs"
