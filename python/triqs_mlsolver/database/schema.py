# SPDX-License-Identifier: Apache-2.0
"""The HDF5 layout of a training database (format ``triqs_mlsolver.database``, version 3).

``N`` samples, ``K`` bath sites, ``T`` stored tau points, ``L`` Legendre
coefficients; spin axis of length 2 (0 = up, 1 = down).  ``{solver}`` is each
configured solver (cheap ones and the reference), ``{reference}`` the
reference solver only.  Sample ``i`` is the same AIM for every solver.
``G_iw`` is not stored: rebuild it exactly from ``G_l``
(:func:`triqs_mlsolver.gf.transforms.legendre_to_iw`).

:data:`SCHEMA` is the single description of the layout: the writer follows
it, :func:`check_schema` verifies a file against it, and the documentation
table (doc/database.rst) is checked against it by the tests.

Versions (:data:`VERSIONS`): a layout change bumps :data:`FORMAT_VERSION`
and records every dataset it adds in :data:`ADDED`, with the value that
stands for it in older files.  Files of every version ``1 ... FORMAT_VERSION``
are read and checked: a dataset newer than the file is not expected in it,
and :meth:`triqs_mlsolver.database.Database.read` returns the fill value for
it (NaN for the error estimate: "not known").

Checksums (version 3, :mod:`~triqs_mlsolver.database.integrity`): every dataset carries
the attribute ``sha256`` (:data:`DATASET_ATTRS`) and the root ``attrs_sha256``
(:data:`CHECKSUM_ROOT_ATTRS`); :func:`check_schema` requires them in files of version 3
and later.  Older files have none: they are read with an
:class:`~triqs_mlsolver.database.integrity.UncheckedDatabaseWarning`.
"""

from __future__ import annotations

import h5py
import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ROOT_ATTRS",
    "SCHEMA",
    "ADDED",
    "VERSIONS",
    "REFERENCE_ERROR_KEYS",
    "expected_datasets",
    "SOLVER_ATTRS",
    "DATASET_ATTRS",
    "CHECKSUM_ROOT_ATTRS",
    "CHECKSUMS_FROM",
    "check_schema",
    "SchemaError",
]

FORMAT = "triqs_mlsolver.database"
FORMAT_VERSION = 3

#: Layout versions: number -> what changed.
VERSIONS = {
    1: "the first layout",
    2: "the reference's error estimate per sample: solvers/{reference}/error_estimate, "
       "n_bath, converged",
    3: "checksums: a sha256 attribute on every dataset, attrs_sha256 on the root",
}

#: The first layout version with checksums.
CHECKSUMS_FROM = 3

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
    "upgraded_from": "JSON record of the older format a file was upgraded from "
                     "(inspect --upgrade): format_version, package_version, date",
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
    "solvers/{reference}/error_estimate": (
        ("N",), "float64",
        "estimated RMS error of the reference's G(tau) (bath-size convergence, FTLM error "
        "bar included); NaN if the solve failed or the solver gives no estimate"),
    "solvers/{reference}/n_bath": (
        ("N",), "int64", "bath sites the reference diagonalised (-1: failed or not reported)"),
    "solvers/{reference}/converged": (
        ("N",), "bool", "the reference reached its tolerance (False: failed, not converged "
                        "or no estimate)"),
}

#: Datasets added after version 1: path -> (format version that added it, the value that
#: stands for it in older files and in samples without it).
ADDED = {
    "solvers/{reference}/error_estimate": (2, np.nan),
    "solvers/{reference}/n_bath": (2, -1),
    "solvers/{reference}/converged": (2, False),
}

#: The per-sample keys of the reference's error estimate (``solvers/{reference}/<key>``).
REFERENCE_ERROR_KEYS = tuple(p.rsplit("/", 1)[1] for p in SCHEMA
                             if p.startswith("solvers/{reference}/"))

#: Root attributes of the checksum scheme (version 3 and later): name -> meaning.
CHECKSUM_ROOT_ATTRS = {
    "attrs_sha256": "SHA-256 of the attributes of the root and of every group (sorted, as "
                    "JSON; this attribute excluded)",
}

#: Attributes of every dataset (version 3 and later): name -> meaning.
DATASET_ATTRS = {
    "sha256": "SHA-256 of the dataset's canonical bytes: 'dtype|shape|', then the values in C "
              "order, numbers little-endian, bool as one byte, strings as UTF-8 with an 8-byte "
              "length prefix",
}

#: Attributes of each ``solvers/{solver}`` group.
SOLVER_ATTRS = {
    "options": "solver options as JSON",
    "role": "'cheap' or 'reference'",
}


class SchemaError(ValueError):
    """A database file does not follow :data:`SCHEMA`."""


def expected_datasets(version: int, solvers, reference) -> dict:
    """``{dataset path: SCHEMA pattern}`` of a file of layout ``version``."""
    out = {}
    for pat in SCHEMA:
        if ADDED.get(pat, (1,))[0] > version:
            continue
        if "{solver}" in pat:
            out.update({pat.format(solver=s): pat for s in solvers})
        elif "{reference}" in pat:
            out[pat.format(reference=reference)] = pat
        else:
            out[pat] = pat
    return out


def check_schema(path) -> dict:
    """Verify ``path`` against :data:`SCHEMA` (the datasets of its version); returns the sizes
    ``{N, K, T, L}``."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise SchemaError(
                f"{path}: not a triqs_mlsolver database (format attribute "
                f"{f.attrs.get('format')!r})"
            )
        for a in ROOT_ATTRS:
            if a not in f.attrs:
                raise SchemaError(f"{path}: root attribute {a!r} missing")
        ver = f.attrs["format_version"]
        if not (isinstance(ver, (int, np.integer)) and 1 <= ver <= FORMAT_VERSION):
            shown = int(ver) if isinstance(ver, (int, np.integer)) else repr(ver)
            raise SchemaError(
                f"{path}: format_version {shown}; this package checks versions 1 ... "
                f"{FORMAT_VERSION} (upgrade triqs_mlsolver for a newer file)"
            )
        sealed = isinstance(ver, (int, np.integer)) and ver >= CHECKSUMS_FROM
        for a in CHECKSUM_ROOT_ATTRS if sealed else ():
            if a not in f.attrs:
                raise SchemaError(f"{path}: root attribute {a!r} missing (format v{int(ver)} "
                                  "files carry checksums)")
        solvers = [str(s) for s in f.attrs["solvers"]]
        reference = str(f.attrs["reference"])
        if reference not in solvers:
            raise SchemaError(f"{path}: reference {reference!r} is not among the solvers "
                              f"{solvers}")
        sizes: dict = {}
        expected = set()
        for p, pat in expected_datasets(int(ver), solvers, reference).items():
            shape, dtype, _ = SCHEMA[pat]
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
            for a in DATASET_ATTRS if sealed else ():
                if a not in d.attrs:
                    raise SchemaError(f"{path}: {p} has no {a!r} attribute (format "
                                      f"v{int(ver)} files carry checksums)")
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
