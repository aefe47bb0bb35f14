# SPDX-License-Identifier: Apache-2.0
"""The HDF5 layout of a training database (format ``triqs_mlsolver.database``, version 1).

``N`` samples, ``K`` bath sites, ``T`` stored tau points, ``L`` Legendre
coefficients; spin axis of length 2 (0 = up, 1 = down).  ``{solver}`` is each
configured solver (cheap ones and the reference).  Sample ``i`` is the same
AIM for every solver.  ``G_iw`` is not stored: rebuild it exactly from
``G_l`` (:func:`triqs_mlsolver.gf.transforms.legendre_to_iw`).

:data:`SCHEMA` is the single description of the layout: the writer follows
it, :func:`check_schema` verifies a file against it, and the documentation
table (doc/database.rst) is checked against it by the tests.
"""

from __future__ import annotations

import h5py
import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ROOT_ATTRS",
    "SCHEMA",
    "SOLVER_ATTRS",
    "check_schema",
    "SchemaError",
]

FORMAT = "triqs_mlsolver.database"
FORMAT_VERSION = 1

#: Root attributes: name -> meaning.
ROOT_ATTRS = {
    "format": "format name, 'triqs_mlsolver.database'",
    "format_version": "layout version (int)",
    "package_version": "triqs_mlsolver version that wrote the file",
    "git_hash": "git commit of the code, or 'unknown'",
    "created": "UTC time of the merge (ISO 8601)",
    "config": "the validated generation config, as TOML",
    "seed": "sampler seed",
    "n_samples": "N",
    "mpi_size": "MPI ranks of the run(s) that computed the samples (list)",
    "solvers": "all solver names (list)",
    "reference": "name of the reference solver",
    "n_iw": "Matsubara points the solvers used",
}

#: Root attributes that only some files have: name -> meaning.
OPTIONAL_ROOT_ATTRS = {
    "extended_from": "JSON list of the databases whose samples were reused (--extend)",
}

#: Datasets: path -> (shape in symbols, dtype, meaning).
SCHEMA = {
    "params/U": (("N",), "float64", "Hubbard U"),
    "params/mu": (("N",), "float64", "chemical potential (eps_d = -mu)"),
    "params/beta": (("N",), "float64", "inverse temperature"),
    "params/D": (("N",), "float64", "half bandwidth of the bath (W = 2D)"),
    "params/eps_k": (("N", "K"), "float64", "bath energies"),
    "params/V_k": (("N", "K"), "float64", "bath hoppings"),
    "tau_over_beta": (("T",), "float64", "stored tau points divided by beta (0 ... 1)"),
    "status/ok": (("N",), "bool", "every solver succeeded on the sample"),
    "status/reason": (("N",), "str", "empty, or the failures as 'solver: message'"),
    "solvers/{solver}/G_tau": (("N", 2, "T"), "float64", "G(tau) at tau = beta * tau_over_beta"),
    "solvers/{solver}/G_l": (("N", 2, "L"), "float64", "Legendre coefficients"),
    "solvers/{solver}/density": (("N", 2), "float64", "<n_s>"),
    "solvers/{solver}/double_occupancy": (("N",), "float64", "<n_up n_dn> (NaN if unknown)"),
    "solvers/{solver}/wall_time": (("N",), "float64", "seconds for the solve"),
    "solvers/{solver}/ok": (("N",), "bool", "the solve succeeded"),
    "solvers/{solver}/error": (("N",), "str", "empty, or the error message"),
}

#: Attributes of each ``solvers/{solver}`` group.
SOLVER_ATTRS = {
    "options": "solver options as JSON",
    "role": "'cheap' or 'reference'",
}


class SchemaError(ValueError):
    """A database file does not follow :data:`SCHEMA`."""


def check_schema(path) -> dict:
    """Verify ``path`` against :data:`SCHEMA`; returns the sizes ``{N, K, T, L}``."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise SchemaError(
                f"{path}: not a triqs_mlsolver database (format attribute "
                f"{f.attrs.get('format')!r})"
            )
        for a in ROOT_ATTRS:
            if a not in f.attrs:
                raise SchemaError(f"{path}: root attribute {a!r} missing")
        solvers = [str(s) for s in f.attrs["solvers"]]
        sizes: dict = {}
        expected = set()
        for pat, (shape, dtype, _) in SCHEMA.items():
            paths = [pat.format(solver=s) for s in solvers] if "{solver}" in pat else [pat]
            for p in paths:
                expected.add(p)
                if p not in f:
                    raise SchemaError(f"{path}: dataset {p!r} missing")
                d = f[p]
                if len(d.shape) != len(shape):
                    raise SchemaError(f"{path}: {p} has rank {len(d.shape)}, expected {shape}")
                for sym, n in zip(shape, d.shape):
                    if isinstance(sym, int):
                        if n != sym:
                            raise SchemaError(f"{path}: {p} has shape {d.shape}, expected {shape}")
                    elif sizes.setdefault(sym, n) != n:
                        raise SchemaError(f"{path}: {p} has {sym} = {n}, elsewhere {sizes[sym]}")
                if dtype == "str":
                    if h5py.check_string_dtype(d.dtype) is None:
                        raise SchemaError(f"{path}: {p} must hold strings, has {d.dtype}")
                elif d.dtype != np.dtype(dtype):
                    raise SchemaError(f"{path}: {p} has dtype {d.dtype}, expected {dtype}")
        for s in solvers:
            for a in SOLVER_ATTRS:
                if a not in f[f"solvers/{s}"].attrs:
                    raise SchemaError(f"{path}: attribute {a!r} of solvers/{s} missing")
        found = set()
        f.visititems(lambda name, obj: found.add(name) if isinstance(obj, h5py.Dataset) else None)
        extra = sorted(found - expected)
        if extra:
            raise SchemaError(f"{path}: datasets not in the schema: {extra}")
        return sizes
