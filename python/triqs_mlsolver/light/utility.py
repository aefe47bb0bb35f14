# SPDX-License-Identifier: Apache-2.0
"""``triqs.utility.h5diff``, ``triqs.utility.comparison_tests`` and ``triqs.utility.dichotomy``.

The light layer's versions of three small TRIQS utilities that test scripts and DMFT
scripts import, with TRIQS 3.2's signatures and behaviour (the code is this package's):

* :func:`h5diff` ``(f1, f2, precision=1e-6)`` compares two archives and raises
  ``RuntimeError`` listing every difference;
* :func:`assert_arrays_are_close`, :func:`assert_array_close_to_scalar`,
  :func:`assert_gfs_are_close`, :func:`assert_block_gfs_are_close`,
  :func:`assert_block2_gfs_are_close` raise ``AssertionError`` when the largest
  difference reaches ``precision``;
* :func:`dichotomy` finds ``x`` with ``f(x) = y_value`` and returns ``(x, f(x))``, or
  ``(None, None)`` when it fails.

They are served under their TRIQS 3 names and under the TRIQS 2.x names
``pytriqs.utility.*``.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

from .. import mpi
from ..gf import BlockGf, Gf, HDFArchive, HDFArchiveGroup
from ..operators import Operator

_COMPARISON_NAMES = ("assert_arrays_are_close", "assert_array_close_to_scalar",
                     "assert_gfs_are_close", "assert_block_gfs_are_close",
                     "assert_block2_gfs_are_close")

#: ``{TRIQS module: names served there}`` (see :mod:`triqs_mlsolver.light`).
SERVED = {}
for _prefix in ("triqs.utility", "pytriqs.utility"):
    SERVED[f"{_prefix}.h5diff"] = ("h5diff",)
    SERVED[f"{_prefix}.comparison_tests"] = _COMPARISON_NAMES
    SERVED[f"{_prefix}.dichotomy"] = ("dichotomy",)
del _prefix

__all__ = ["h5diff", "dichotomy", *_COMPARISON_NAMES]


# ---------------------------------------------------------------------------
#  comparison_tests
# ---------------------------------------------------------------------------
def _show(x, limit=400):
    text = np.array2string(np.asarray(x), threshold=20, edgeitems=3)
    return text if len(text) <= limit else text[:limit] + " ..."


def assert_arrays_are_close(a, b, precision=1.e-6):
    """Raise ``AssertionError`` unless ``max |a - b| < precision``.

    Parameters
    ----------
    a, b : array_like
        Same shape (a shape mismatch is an ``AssertionError`` too).
    precision : float
        The largest allowed absolute difference (exclusive, as in TRIQS).  A NaN
        anywhere fails.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise AssertionError(f"Arrays have different shapes: {a.shape} and {b.shape}")
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    if not d < precision:
        raise AssertionError(
            f"Arrays are different. Difference is {d} (precision {precision}).\n"
            f" {_show(a)} \n\n --------- \n\n {_show(b)}")


def assert_array_close_to_scalar(a, x, precision=1.e-6):
    """Raise ``AssertionError`` unless the square matrix ``a`` is ``x`` times the identity."""
    a = np.asarray(a)
    assert_arrays_are_close(a, np.identity(a.shape[0]) * x, precision)


def assert_gfs_are_close(a, b, precision=1.e-6):
    """Raise ``AssertionError`` unless ``a`` and ``b`` share a mesh and their data are close.

    The data are compared with :func:`assert_arrays_are_close` (``precision`` absolute).
    """
    if type(a.mesh) is not type(b.mesh):
        raise AssertionError(
            f"GFs have different type of meshes: {type(a.mesh).__name__} and "
            f"{type(b.mesh).__name__}")
    if a.mesh != b.mesh:
        raise AssertionError(f"meshes are different: {a.mesh!r} and {b.mesh!r}")
    assert_arrays_are_close(a.data, b.data, precision)


def assert_block_gfs_are_close(a, b, precision=1.e-6):
    """Raise ``AssertionError`` unless the BlockGfs have the same block names, in the same
    order, and every pair of blocks passes :func:`assert_gfs_are_close`."""
    if len(a) != len(b):
        raise AssertionError(
            f"Block GFs have different number of blocks: {len(a)} and {len(b)}")
    for (na, ga), (nb, gb) in zip(a, b):
        if na != nb:
            raise AssertionError(f"block name {na} does not match {nb}")
        assert_gfs_are_close(ga, gb, precision)


def assert_block2_gfs_are_close(a, b, precision=1.e-6):
    """As :func:`assert_block_gfs_are_close` (TRIQS's ``Block2Gf`` version does the same)."""
    assert_block_gfs_are_close(a, b, precision)


# ---------------------------------------------------------------------------
#  h5diff
# ---------------------------------------------------------------------------
_NUMBER_TOLERANCE = 1e-10  # TRIQS compares int, float and complex values to 1e-10


class _Diff:
    """One comparison of two archives; ``failures`` collects what differs."""

    def __init__(self, precision):
        self.precision = precision
        self.failures = []

    def compare(self, key, a, b):
        try:
            self._compare(key, a, b)
        except (AssertionError, RuntimeError, ValueError) as exc:
            lines = [ln for ln in str(exc).split("\n") if ln.strip() and not ln.startswith("..")]
            self.failures.append(f"Comparison of key '{key}' has failed:\n" + "\n".join(lines))

    def _compare(self, key, a, b):
        if type(a) is not type(b):
            raise AssertionError(
                f"{key} have different types: {type(a).__name__} and {type(b).__name__}")
        if isinstance(a, (dict, HDFArchiveGroup)):
            ka, kb = list(a.keys()), list(b.keys())
            if ka != kb:
                self.failures.append(
                    f"Two archive groups '{key}' with different keys \n {ka} \n vs\n {kb}")
            for k in ka:
                if k in kb:
                    self.compare(f"{key}/{k}", a[k], b[k])
        elif isinstance(a, Gf):
            assert_gfs_are_close(a, b, self.precision)
        elif isinstance(a, BlockGf):
            assert_block_gfs_are_close(a, b, self.precision)
        elif isinstance(a, Operator):
            if not (a - b).is_zero():
                raise AssertionError(f"Many body operators not equal: {a} and {b}")
        elif isinstance(a, np.ndarray):
            if a.dtype.kind in "biufc":
                assert_arrays_are_close(a, b)  # TRIQS: the default 1e-6, not precision
            elif not np.array_equal(a, b):
                raise AssertionError(f"Arrays of {a.dtype} are different: {a} and {b}")
        elif isinstance(a, (bool, np.bool_, str)):
            if a != b:
                raise AssertionError(f"Values '{a}' and '{b}' are different")
        elif isinstance(a, numbers.Number):
            if not abs(a - b) < _NUMBER_TOLERANCE:
                raise AssertionError(f" a-b = {a - b}")
        elif isinstance(a, (list, tuple)):
            if len(a) != len(b):
                raise AssertionError(f"List of different size: {len(a)} and {len(b)}")
            for x, y in zip(a, b):
                self.compare(key, x, y)
        else:
            raise NotImplementedError(
                f"The type {type(a).__name__} for key '{key}' is not comparable by h5diff")


def h5diff(f1, f2, precision=1.e-6):
    """Compare two HDF5 archives entry by entry; raise ``RuntimeError`` if they differ.

    As ``triqs.utility.h5diff.h5diff`` of TRIQS 3.2: groups and dicts must have the
    same keys in the same order; Green's functions (``Gf``, ``BlockGf``) the same
    meshes and data within ``precision`` (absolute); numeric arrays agree to 1e-6 and
    numbers to 1e-10 whatever ``precision`` is (TRIQS's own tolerances); strings,
    booleans and operators exactly; lists and tuples element by element.  Every
    difference is collected; the list is printed on ``stderr`` and the call raises.

    Parameters
    ----------
    f1, f2 : str or path-like
        The archives.
    precision : float
        Tolerance on Green's-function data.

    Raises
    ------
    RuntimeError
        The archives differ (the message starts with ``FAILED`` and lists the
        differences).
    NotImplementedError
        An entry holds an object h5diff cannot compare.

    Notes
    -----
    Unlike TRIQS, a key present in one archive only is reported as a difference and the
    common keys are still compared (TRIQS stops with a ``KeyError``), and the failures
    of one call are not carried over into the next.
    """
    diff = _Diff(precision)
    with HDFArchive(f1, "r") as a, HDFArchive(f2, "r") as b:
        diff.compare("", a, b)
    if diff.failures:
        bar = "-" * 50
        print(bar, "-" * 20 + "  FAILED  " + "-" * 20, bar, sep="\n", file=sys.stderr)
        for failure in diff.failures:
            print(failure, bar, sep="\n", file=sys.stderr)
        raise RuntimeError(f"FAILED: {f1} and {f2} differ:\n" + "\n".join(diff.failures))


# ---------------------------------------------------------------------------
#  dichotomy
# ---------------------------------------------------------------------------
def dichotomy(function, x_init, y_value, precision_on_y, delta_x, max_loops=1000, x_name="",
              y_name="", verbosity=1):
    r"""Find :math:`x` with :math:`f(x) = y` (``triqs.utility.dichotomy``).

    From ``x_init``, steps of ``delta_x`` are taken until :math:`f - y` changes sign
    (first in the direction that decreases :math:`f - y` for an increasing :math:`f`,
    as TRIQS does; if the first step moves away from ``y_value`` the other direction is
    taken); then the bracket is refined by regula falsi (Illinois variant) until
    :math:`|f(x) - y| <` ``precision_on_y``.  Both stages together make at most
    ``max_loops`` calls of ``function`` after the first.

    Parameters
    ----------
    function : callable
        Real function of one real variable.
    x_init : float
        The first guess.
    y_value : float
        The target value of ``function``.
    precision_on_y : float
        Stop when ``abs(function(x) - y_value) < precision_on_y``.
    delta_x : float
        The step of the bracket search (its sign is ignored).
    max_loops : int
    x_name, y_name : str
        Names used in the reports.
    verbosity : int
        0 silent, 1 (default) reports the bracket and the result (on MPI rank 0),
        3 every step.

    Returns
    -------
    (float, float) or (None, None)
        ``(x, function(x))``, or ``(None, None)`` if no ``x`` was found within
        ``max_loops``.
    """
    def report(msg, level=1):
        if verbosity >= level:
            mpi.report(msg)

    pad = "    "
    report(f"Dichotomy adjustment of {x_name} to obtain {y_name} = {y_value:f} +/- "
           f"{precision_on_y:f}")
    step = abs(delta_x)
    x1 = float(x_init)
    y1 = float(function(x1))
    loops = 0
    if abs(y1 - y_value) < precision_on_y:
        report(f"{pad}{x_name} found in 0 iterations : {y_name} = {y1:f};{x_name} = {x1:f}")
        return x1, y1
    # -- bracket: walk until f - y changes sign
    direction = -1.0 if y1 > y_value else 1.0  # towards y for an increasing function
    x2, y2 = x1, y1
    turned = False
    while loops < max_loops:
        loops += 1
        xn = x2 + direction * step
        yn = float(function(xn))
        report(f"{pad}{x_name} = {xn:f}  \n{pad}{y_name} = {yn:f}", level=3)
        if (yn - y_value) * (y1 - y_value) <= 0:
            x2, y2 = xn, yn
            break
        if not turned and loops == 1 and abs(yn - y_value) > abs(y1 - y_value):
            direction, turned = -direction, True  # a decreasing function: walk the other way
            continue
        x1, y1 = x2, y2 = xn, yn
    else:
        report(f"{pad}FAILURE to bracket {x_name} for {y_name} = {y_value:f} after {loops} "
               "iterations; returning (None, None)")
        return None, None
    if abs(y2 - y_value) < precision_on_y:
        report(f"{pad}{x_name} found in {loops} iterations : {y_name} = {y2:f};{x_name} = "
               f"{x2:f}")
        return x2, y2
    if x1 > x2:
        x1, y1, x2, y2 = x2, y2, x1, y1
    report(f"{pad}{x1:f} < {x_name} < {x2:f}")
    report(f"{pad}{y1:f} < {y_name} < {y2:f}")
    # -- refine: regula falsi, halving the weight of an end kept twice (Illinois)
    f1, f2 = y1 - y_value, y2 - y_value
    side = 0
    while loops < max_loops:
        loops += 1
        x = x2 - f2 * (x2 - x1) / (f2 - f1) if f2 != f1 else 0.5 * (x1 + x2)
        y = float(function(x))
        fx = y - y_value
        if abs(fx) < precision_on_y:
            report(f"{pad}{x_name} found in {loops} iterations : ")
            report(f"{pad}{y_name} = {y:f};{x_name} = {x:f}")
            return x, y
        if fx * f1 > 0:
            x1, f1 = x, fx
            if side == -1:
                f2 *= 0.5
            side = -1
        else:
            x2, f2 = x, fx
            if side == 1:
                f1 *= 0.5
            side = 1
        report(f"{pad}{x1:f} < {x_name} < {x2:f}", level=3)
    report(f"{pad}FAILURE to adjust {x_name} to the value {y_value:f} after {loops} "
           "iterations.")
    report(f"{pad}FAILURE returning (None, None) due to failure.")
    return None, None
