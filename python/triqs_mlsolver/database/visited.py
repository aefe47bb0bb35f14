# SPDX-License-Identifier: Apache-2.0
"""The AIMs a solver was asked to solve: a record for the dynamic database.

``MLSolver(..., record="visited.h5")`` (or ``solve(record=...)``, or ``[solvers.ml]
record = "visited.h5"`` in a ``dmft`` config) appends every AIM it is asked to solve
to an HDF5 file, with what the model made of it (in its domain or not, why, whether
the reference answered).  The file is the input of the next round of the dynamic
database (the seed lecture's "what's next"): the AIMs where the model was not trusted
are the ones a new database should hold.

Layout (format ``triqs_mlsolver.visited``, version 1; root attributes ``format``,
``format_version``, ``package_version``, ``n_visits``)::

    visits/<k>/                   k = 0, 1, ... in the order of the solves
        attrs: beta, U, model, out_of_domain (bool), reasons (str, '; '-joined),
               invalid (str), fallback_used (bool), spread_max (float, NaN if the
               model did not run), time (UTC ISO 8601)
        mu        (2,) float      the level per spin, G0^-1 = i w + mu - Delta
        Delta_iw  (2, 2 n_iw)     complex, a continuous hybridisation, or
        eps_k, V_k (2, K)         a discrete bath

Appends from several processes (``mpirun``, several scripts) are serialised by an
exclusive ``flock`` on ``<file>.lock``; each visit is written and flushed before the
lock is released.  :func:`read_visits` gives the records back.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "record_visit", "read_visits", "Visit"]

FORMAT = "triqs_mlsolver.visited"
FORMAT_VERSION = 1


class _Locked:
    """An exclusive ``flock`` on ``path + '.lock'`` (a context manager)."""

    def __init__(self, path):
        self.lock = Path(str(path) + ".lock")

    def __enter__(self):
        self.fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False


def record_visit(path, params, diagnostics) -> int:
    """Append the AIM ``params`` and what the model made of it (``diagnostics`` of
    :func:`~triqs_mlsolver.mlsolver.solve_ml`) to ``path``; returns the visit number.

    Raises
    ------
    ValueError
        ``path`` exists and is not a visited-AIM file.
    """
    import h5py

    from .. import __version__

    path = Path(path)
    with _Locked(path):
        with h5py.File(path, "a") as f:
            if "format" not in f.attrs:
                if len(f.keys()):
                    raise ValueError(f"{path} is not a file of visited AIMs (no format "
                                     f"attribute); record into a new file")
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["package_version"] = __version__
                f.attrs["n_visits"] = 0
            elif f.attrs["format"] != FORMAT:
                raise ValueError(f"{path} is a {f.attrs['format']!r} file, not a file of "
                                 f"visited AIMs ({FORMAT!r}); record into another file")
            k = int(f.attrs["n_visits"])
            g = f.require_group("visits").create_group(str(k))
            d = diagnostics or {}
            g.attrs["beta"] = float(params.beta)
            g.attrs["U"] = float(params.U)
            g.attrs["model"] = str(d.get("model", ""))
            g.attrs["out_of_domain"] = bool(d.get("out_of_domain"))
            g.attrs["reasons"] = "; ".join(d.get("out_of_domain") or [])
            g.attrs["invalid"] = "; ".join(d.get("invalid") or [])
            g.attrs["fallback_used"] = bool(d.get("fallback_used", False))
            g.attrs["spread_max"] = float(d.get("spread_max", np.nan))
            g.attrs["time"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            g["mu"] = np.asarray(params.mu, float)
            if params.has_discrete_bath:
                g["eps_k"] = np.asarray(params.eps_k, float)
                g["V_k"] = np.asarray(params.V_k, float)
            else:
                g["Delta_iw"] = np.asarray(params.Delta_iw, complex)
            f.attrs["n_visits"] = k + 1
            f.flush()
    return k


class Visit:
    """One recorded AIM: ``params`` (:class:`~triqs_mlsolver.aim.AIMParams`) and the
    attributes of its record (``out_of_domain``, ``reasons``, ``fallback_used``, ...)."""

    def __init__(self, params, attrs):
        self.params = params
        self.attrs = attrs

    @property
    def out_of_domain(self) -> bool:
        return bool(self.attrs.get("out_of_domain", False))

    def __repr__(self):
        return (f"Visit(beta={self.params.beta:g}, U={self.params.U:g}, "
                f"out_of_domain={self.out_of_domain})")


def read_visits(path) -> list:
    """The :class:`Visit` records of a file written by :func:`record_visit`."""
    import h5py

    from ..aim import AIMParams

    path = Path(path)
    out = []
    with _Locked(path), h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not a file of visited AIMs (format "
                             f"{f.attrs.get('format')!r}, expected {FORMAT!r})")
        version = int(f.attrs["format_version"])
        if version > FORMAT_VERSION:
            raise ValueError(f"{path} has format version {version}, newer than this "
                             f"package's {FORMAT_VERSION}; upgrade triqs_mlsolver")
        for k in range(int(f.attrs["n_visits"])):
            g = f["visits"][str(k)]
            attrs = {a: (v.item() if hasattr(v, "item") else v) for a, v in g.attrs.items()}
            kw = dict(U=float(attrs["U"]), beta=float(attrs["beta"]), mu=g["mu"][()])
            if "Delta_iw" in g:
                kw["Delta_iw"] = g["Delta_iw"][()]
            else:
                kw["eps_k"], kw["V_k"] = g["eps_k"][()], g["V_k"][()]
            out.append(Visit(AIMParams(**kw), attrs))
    return out
