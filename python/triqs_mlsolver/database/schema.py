# SPDX-License-Identifier: Apache-2.0
"""The HDF5 layout of a training database (format ``triqs_mlsolver.database``, version 4).

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
stands for it in older files: a constant ("not known": NaN for the error
estimate) or a :class:`Derived` value, a function of the file's legacy
``params/*`` arrays (the per-spin parameters of version 4 are the legacy
spin-symmetric ones on both spins, ``n_bath`` is ``K``); :func:`added_value`
gives either.  Files of every version ``1 ... FORMAT_VERSION`` are read and
checked: a dataset newer than the file is not expected in it,
:meth:`triqs_mlsolver.database.Database.read` returns the fill value for it and
:class:`~triqs_mlsolver.database.Database` derives the per-spin parameters.

Per-spin parameters and bath sizes (version 4): ``params/mu_s``, ``params/eps_k_s``,
``params/V_k_s`` hold the AIM of each spin (a spin-polarised AIM: a Zeeman field, an
antiferromagnetic DMFT loop); the legacy ``params/mu``, ``params/eps_k``, ``params/V_k``
stay and hold spin up, so a reader of the legacy fields still reads every spin-symmetric
sample right.  A sample may use fewer bath sites than ``K``: ``params/n_bath`` says how
many; its sites are the first ``n_bath`` entries and the rest is padding, ``eps_k = 0``
and ``V_k = 0`` exactly (a site with ``V_k = 0`` is decoupled: it changes no Green's
function and no descriptor).

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
    "PER_SPIN_FROM",
    "LEGACY_PARAMS",
    "Derived",
    "added_value",
    "check_schema",
    "SchemaError",
]

FORMAT = "triqs_mlsolver.database"
FORMAT_VERSION = 4

#: Layout versions: number -> what changed.
VERSIONS = {
    1: "the first layout",
    2: "the reference's error estimate per sample: solvers/{reference}/error_estimate, "
       "n_bath, converged",
    3: "checksums: a sha256 attribute on every dataset, attrs_sha256 on the root",
    4: "per-spin parameters params/mu_s, params/eps_k_s, params/V_k_s (spin-polarised "
       "AIMs; the legacy params/mu, eps_k, V_k hold spin up) and params/n_bath (baths of "
       "fewer than K sites, padded with eps_k = V_k = 0)",
}

#: The first layout version with checksums.
CHECKSUMS_FROM = 3
#: The first layout version with per-spin parameters and ``params/n_bath``.
PER_SPIN_FROM = 4
#: The spin-symmetric parameter datasets of versions 1 ... 3 (``params/<name>``); in
#: version 4 ``mu``, ``eps_k``, ``V_k`` hold spin up of ``mu_s``, ``eps_k_s``, ``V_k_s``.
LEGACY_PARAMS = ("U", "mu", "beta", "D", "eps_k", "V_k")

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
    "params/mu_s": (("N", 2), "float64", "chemical potential per spin (params/mu = spin up)"),
    "params/eps_k_s": (("N", 2, "K"), "float64",
                       "bath energies per spin (params/eps_k = spin up; 0 beyond n_bath)"),
    "params/V_k_s": (("N", 2, "K"), "float64",
                     "bath hoppings per spin (params/V_k = spin up; 0 beyond n_bath)"),
    "params/n_bath": (("N",), "int64",
                      "bath sites the sample uses (1 ... K; the first n_bath entries of the "
                      "bath arrays, the rest padding)"),
    "tau_over_beta": (("T",), "float64", "stored tau points divided by beta (0 ... 1)"),
    "status/ok": (("N",), "bool", "every solver succeeded on the sample"),
    "status/reason": (("N",), "str", "empty, or the failures as 'solver: message'"),
    "solvers/{solver}/G_tau": (("N", 2, "T"), "float64", "G(tau) at tau = beta * tau_over_beta"),
    "solvers/{solver}/G_l": (("N", 2, "L"), "float64", "Legendre coefficients"),
    "solvers/{solver}/density": (("N", 2), "float64", "<n_s>"),
    "solvers/{solver}/double_occupancy": (
        ("N",), "float64",
        "<n_up n_dn> (NaN if unknown, or a cheap solver's estimate outside [0, 1])"),
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

class Derived:
    """The value of a dataset that an older file lacks, computed from the file's legacy
    ``params/*`` arrays (:data:`LEGACY_PARAMS`): ``Derived(text, function)(params)``.

    ``text`` says what it is (shown in the docs and in ``repr``); ``function`` takes the
    dict ``{name: array}`` of the file's ``params/<name>`` (sample on the first axis) and
    returns the array of the dataset.
    """

    def __init__(self, text: str, function):
        self.text = text
        self.function = function

    def __call__(self, params: dict) -> np.ndarray:
        return self.function(params)

    def __repr__(self):
        return f"Derived({self.text!r})"


def _both_spins(name):
    def derive(params):
        a = np.asarray(params[name], dtype=float)
        return np.ascontiguousarray(np.repeat(a[:, None], 2, axis=1))

    return Derived(f"params/{name} on both spins", derive)


def _all_sites(params):
    e = np.asarray(params["eps_k"])
    return np.full(e.shape[0], e.shape[1], dtype=np.int64)


#: Datasets added after version 1: path -> (format version that added it, the value that
#: stands for it in older files and in samples without it: a constant, or a
#: :class:`Derived` value computed from the file's legacy parameters).
ADDED = {
    "solvers/{reference}/error_estimate": (2, np.nan),
    "solvers/{reference}/n_bath": (2, -1),
    "solvers/{reference}/converged": (2, False),
    "params/mu_s": (4, _both_spins("mu")),
    "params/eps_k_s": (4, _both_spins("eps_k")),
    "params/V_k_s": (4, _both_spins("V_k")),
    "params/n_bath": (4, Derived("K, every site used", _all_sites)),
}


def added_value(pattern: str, n: int, params: dict | None = None) -> np.ndarray:
    """The array that stands for the dataset ``pattern`` (a key of :data:`ADDED`) in a
    file that predates it: ``n`` samples of its constant, or its :class:`Derived` value
    from ``params`` (the file's legacy ``params/*`` arrays), in the dtype of
    :data:`SCHEMA`."""
    _, fill = ADDED[pattern]
    dtype = SCHEMA[pattern][1]
    if isinstance(fill, Derived):
        if params is None:
            raise ValueError(f"{pattern} is derived from the legacy parameters; pass them")
        return np.asarray(fill(params), dtype=dtype)
    return np.full(n, fill, dtype=dtype)

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
