# SPDX-License-Identifier: Apache-2.0
"""Content-addressed integrity of databases: checksums, sample hashes, value rules, the
output lock and full-disk handling.

Checksums (database format 3)
    Every dataset carries an attribute ``sha256``: the SHA-256 of its canonical bytes
    (:func:`array_sha256`: a header ``dtype|shape|``, then the values little-endian in C
    order; ``bool`` as one byte; strings as UTF-8, each prefixed by its length as 8
    little-endian bytes).  The root attribute ``attrs_sha256`` covers the attributes of
    the root and of every group (:func:`attrs_sha256`).  :class:`~.reader.Database`
    verifies the root attributes, ``params/*``, ``tau_over_beta`` and ``status/*`` when
    it opens a file and every other dataset when it reads it; ``inspect --check``
    verifies everything.  A mismatch raises :class:`DatabaseIntegrityError`.

Sample hashes
    A sample is identified by the content of its AIM, not by the file it is in
    (:func:`sample_hashes`): 64 bits of the SHA-256 of its parameters, written with 10
    significant digits (so a regenerated database whose sampler differs in the last bit
    still has the same samples), with the bath sites in a canonical order, padded sites
    (format 4, beyond ``params/n_bath``) left out and the down spin added for a
    spin-polarised sample only (so every spin-symmetric sample keeps the hash it had in
    formats 1 ... 3).  The model file
    records the hashes of its training, validation and test samples; ``evaluate`` excludes
    every sample of any database whose hash is among the first two.

Value rules (:func:`check_params`, :func:`check_solver_values`)
    What no AIM and no solver can produce is refused with the dataset, the sample number
    and the value (:class:`DatabaseValueError`), before any training:

    * parameters: finite; ``beta > 0``, ``D > 0``, ``U >= 0``; ``|U|, |mu|, |eps_k|,
      |V_k| <= ENERGY_MAX * D`` (per spin too); ``beta * D <= BETA_D_MAX``;
    * per-spin parameters and bath sizes (format 4): ``V_k_s >= 0``; ``1 <= n_bath <= K``;
      the padded entries (site ``>= n_bath``) of ``eps_k_s``, ``V_k_s``, ``eps_k``, ``V_k``
      exactly 0; the legacy ``mu``, ``eps_k``, ``V_k`` equal to spin up of ``mu_s``,
      ``eps_k_s``, ``V_k_s`` (bit for bit: the writer stores the same numbers);
    * a successful solve (``solvers/{s}/ok``): ``G(tau)`` finite with
      ``-1 - VALUE_TOL <= G(tau) <= VALUE_TOL`` and ``|G(0+) + G(beta-) + 1| <= VALUE_TOL``
      (a fermionic G(tau) lies in [-1, 0]); ``G_l`` finite with ``|G_l| <= sqrt(2l+1) beta
      (1 + VALUE_TOL)`` (the bound of the Legendre transform of ``|G| <= 1``); densities
      finite in ``[-VALUE_TOL, 1 + VALUE_TOL]``; the double occupancy NaN ("not known") or
      in that interval;
    * every sample: ``wall_time`` finite and ``>= 0``; ``tau_over_beta`` finite in
      ``[0, 1]`` and increasing.

    The solvers' own values are far inside these bounds (measured on the default and
    Bethe recipes: G(tau) <= 0, sum rule to 1e-11, ``|G_l|`` at most 0.44 of its bound),
    and :func:`~.generate.solve_sample` records a solution that breaks them as a failed
    solve, so a finished database never holds one unless it was damaged or edited.

The output lock
    ``generate`` holds ``OUTPUT.lock`` (:class:`OutputLock`) from its checks to the end
    of the merge: an ``flock`` on the file plus the owner's pid, host and start time in
    it.  A second ``generate`` on the same output (with or without ``--resume``) is
    refused, naming the owner.  A lock left by a run that died is taken over with a
    message when its pid no longer runs on this host; one from another host is never
    taken over (delete it by hand once that run is gone).

Full disks
    Every file is built in memory and written by :func:`atomic_write` to a unique
    temporary name, synced and renamed: ENOSPC raises :class:`DiskFullError` (one line:
    the file, the errno, how to resume), the temporary file is removed, and nothing that
    was complete before is touched.  HDF5 never writes to a disk directly, so a full disk
    cannot crash it.
"""

from __future__ import annotations

import base64
import errno
import functools
import hashlib
import io
import json
import os
import socket
import time
from pathlib import Path

import numpy as np

from ..errors import TriqsMLSolverError, TriqsMLSolverWarning

__all__ = [
    "DatabaseIntegrityError",
    "DatabaseValueError",
    "UncheckedDatabaseWarning",
    "DiskFullError",
    "OutputLockedError",
    "OutputLock",
    "CHECKSUM_ATTR",
    "ATTRS_CHECKSUM",
    "SAMPLE_HASH_SCHEME",
    "VALUE_TOL",
    "ENERGY_MAX",
    "BETA_D_MAX",
    "array_sha256",
    "attrs_sha256",
    "seal",
    "verify_dataset",
    "verify_attrs",
    "verify_file",
    "sample_hashes",
    "polarised",
    "POLARISED_TOL",
    "encode_hashes",
    "decode_hashes",
    "check_params",
    "check_solver_values",
    "check_file_values",
    "is_disk_full",
    "atomic_write",
    "h5_image",
]

#: Attribute of every dataset: its SHA-256 (:func:`array_sha256`).
CHECKSUM_ATTR = "sha256"
#: Root attribute: SHA-256 of the attributes of the root and of every group.
ATTRS_CHECKSUM = "attrs_sha256"

#: Tolerance of the value rules (numerical noise of a solver is far below it).
VALUE_TOL = 1e-2
#: Largest energy (U, mu, eps_k, V_k) in units of the half bandwidth D.
ENERGY_MAX = 1e4
#: Largest beta * D.
BETA_D_MAX = 1e6

SAMPLE_HASH_SCHEME = (
    "params-sha256-64/1: first 8 bytes (little-endian uint64) of the SHA-256 of "
    "'key=v,v,...;' over the sorted parameter names, values as '%.9e' (-0 as 0), bath sites "
    "sorted by (eps_k, |V_k|) with |V_k|; only the first n_bath sites (format 4); a "
    "spin-polarised sample appends 'spin_dn:' and 'mu=...;eps_k=...;V_k=...;' of spin down"
)
#: Spins whose ``mu_s``, ``eps_k_s`` or ``V_k_s`` differ by more than this make a sample
#: spin-polarised (:func:`polarised`).
POLARISED_TOL = 1e-12


class DatabaseIntegrityError(TriqsMLSolverError, ValueError):
    """A database's data do not match their checksums (the file is damaged or was edited)."""


class DatabaseValueError(TriqsMLSolverError, ValueError):
    """A database holds a value no AIM or solver can produce (non-finite or absurd)."""


class UncheckedDatabaseWarning(TriqsMLSolverWarning):
    """A database of a format before checksums (version < 3) is read unverified."""


class DiskFullError(TriqsMLSolverError, OSError):
    """A write failed because the disk is full (ENOSPC); the message says how to resume."""


class OutputLockedError(TriqsMLSolverError, FileExistsError):
    """Another process holds the lock of an output (``OUTPUT.lock``)."""


# -- checksums --------------------------------------------------------------------------------
def _is_str(a: np.ndarray) -> bool:
    return a.dtype.kind in "OSU"


def array_sha256(a) -> str:
    """SHA-256 of the canonical bytes of ``a`` (the ``sha256`` attribute of a dataset).

    ``dtype|shape|`` (dtype: ``str`` for strings, else the numpy name), then the values in
    C order: numbers little-endian, ``bool`` as one byte each, strings as UTF-8, each
    prefixed by its length (8 bytes little-endian).  Independent of how HDF5 stores the
    array (chunks, compression, byte order).
    """
    a = np.asarray(a)
    h = hashlib.sha256()
    if _is_str(a):
        h.update(f"str|{a.shape}|".encode())
        for x in a.ravel():
            b = x.encode() if isinstance(x, str) else bytes(x)
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()
    if a.dtype.kind == "b":
        c = np.ascontiguousarray(a, dtype=np.uint8)
        name = "bool"
    else:
        c = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        name = a.dtype.name
    h.update(f"{name}|{a.shape}|".encode())
    h.update(c.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _plain(v):
    """An attribute value as plain JSON data (arrays as lists, bytes as str)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()] if v.dtype.kind == "O" else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def attrs_sha256(f) -> str:
    """SHA-256 of the attributes of the root and of every group of the open file ``f``
    (sorted; ``attrs_sha256`` itself and the datasets' checksums excluded)."""
    import h5py

    out = {}

    def add(name, obj):
        for k, v in obj.attrs.items():
            if name == "" and k == ATTRS_CHECKSUM:
                continue
            out[f"{name}@{k}"] = _plain(v)

    add("", f)
    f.visititems(lambda n, o: add(n, o) if isinstance(o, h5py.Group) else None)
    text = json.dumps(out, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(f) -> None:
    """Give every dataset of the open (writable) file ``f`` its ``sha256`` attribute, from the
    values read back, and the root its ``attrs_sha256`` (call it last)."""
    import h5py

    dsets = []
    f.visititems(lambda n, o: dsets.append(o) if isinstance(o, h5py.Dataset) else None)
    for d in dsets:
        d.attrs[CHECKSUM_ATTR] = array_sha256(d[()])
    f.attrs[ATTRS_CHECKSUM] = attrs_sha256(f)


_FIX = ("the file is damaged or was edited: restore an intact copy or regenerate it with "
        "'triqs-mlsolver generate'")


def verify_dataset(d, *, file="", required=True):
    """The values of the h5py dataset ``d``, checked against its ``sha256`` attribute.

    ``required``: a missing checksum is an error (files of format 3 and later); otherwise
    a dataset without one is returned unchecked.  Raises :class:`DatabaseIntegrityError`.
    """
    data = d[()]
    want = d.attrs.get(CHECKSUM_ATTR)
    if want is None:
        if required:
            raise DatabaseIntegrityError(f"{file}: dataset {d.name.lstrip('/')} has no "
                                         f"checksum (attribute {CHECKSUM_ATTR!r}); {_FIX}")
        return data
    want = want.decode() if isinstance(want, bytes) else str(want)
    got = array_sha256(data)
    if got != want:
        raise DatabaseIntegrityError(
            f"{file}: dataset {d.name.lstrip('/')} does not match its checksum (sha256 "
            f"{got[:16]}..., recorded {want[:16]}...); {_FIX}")
    return data


def verify_attrs(f, *, file="", required=True) -> None:
    """Check the attributes of the open file ``f`` against ``attrs_sha256``."""
    want = f.attrs.get(ATTRS_CHECKSUM)
    if want is None:
        if required:
            raise DatabaseIntegrityError(f"{file}: root attribute {ATTRS_CHECKSUM!r} "
                                         f"missing; {_FIX}")
        return
    want = want.decode() if isinstance(want, bytes) else str(want)
    if attrs_sha256(f) != want:
        raise DatabaseIntegrityError(
            f"{file}: the attributes (config, solvers, format, ...) do not match their "
            f"checksum {ATTRS_CHECKSUM!r}; {_FIX}")


def verify_file(path, *, required=True) -> int:
    """Verify every checksum of the database ``path``; returns the number of datasets."""
    import h5py

    dsets = []
    with h5py.File(path, "r") as f:
        verify_attrs(f, file=str(path), required=required)
        f.visititems(lambda n, o: dsets.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in dsets:
            verify_dataset(f[n], file=str(path), required=required)
    return len(dsets)


# -- sample hashes ----------------------------------------------------------------------------
def polarised(params: dict) -> np.ndarray:
    """``(N,)`` bool: the spins of the sample differ (``|up - down| > POLARISED_TOL`` in
    ``mu_s``, ``eps_k_s`` or ``V_k_s``); all False without per-spin parameters."""
    if "mu_s" not in params:
        return np.zeros(len(next(iter(params.values()))), bool)
    out = np.zeros(len(params["mu_s"]), bool)
    for k in ("mu_s", "eps_k_s", "V_k_s"):
        if k in params:
            a = np.asarray(params[k], dtype=float)
            d = np.abs(a[:, 0] - a[:, 1]).reshape(len(a), -1)
            out |= (d > POLARISED_TOL).any(axis=1)
    return out


def _site_order(eps, V, nb):
    """Canonical order of the bath sites of every row: the used ones (``< nb``) by
    ``(eps_k, |V_k|)``, the padding after them."""
    pad = np.arange(eps.shape[1])[None, :] >= nb[:, None]
    return np.lexsort((V, eps, pad), axis=-1)


def _rows_text(p: dict, nb) -> list:
    """``'key=v,...;'`` of every row of the parameter arrays ``p`` (the bath sites in
    canonical order, the first ``nb`` of each row)."""
    n = len(next(iter(p.values())))
    p = dict(p)
    bath = "eps_k" in p and "V_k" in p and p["eps_k"].ndim == 2 and \
        p["V_k"].shape == p["eps_k"].shape
    if bath:
        V = np.abs(p["V_k"])
        order = _site_order(p["eps_k"], V, nb)
        p["eps_k"] = np.take_along_axis(p["eps_k"], order, axis=-1)
        p["V_k"] = np.take_along_axis(V, order, axis=-1)
    cols = []
    for k in sorted(p):
        v = p[k].reshape(n, -1)
        txt = np.char.mod("%.9e", v).tolist()
        if bath and k in ("eps_k", "V_k"):
            txt = [row[:m] for row, m in zip(txt, nb.tolist())]
        cols.append([f"{k}=" + ",".join(row) + ";" for row in txt])
    return ["".join(c[i] for c in cols) for i in range(n)]


def sample_hashes(params: dict) -> np.ndarray:
    """Content hash of every sample: ``(N,)`` uint64 (:data:`SAMPLE_HASH_SCHEME`).

    ``params``: ``{name: array with the sample on the first axis}`` (``U, mu, beta, D``
    of shape (N,), ``eps_k, V_k`` (N, K); optionally the format-4 ``n_bath`` (N,) and
    ``mu_s`` (N, 2), ``eps_k_s, V_k_s`` (N, 2, K)).  Two samples get the same hash when
    their parameters agree to 10 significant digits, whatever the order of their bath
    sites and the padding of their bath arrays.  ``mu``, ``eps_k`` and ``V_k`` are spin up;
    a spin-polarised sample (:func:`polarised`) adds its spin down, a spin-symmetric one
    hashes as in the formats before 4.
    """
    extra = ("n_bath", "mu_s", "eps_k_s", "V_k_s")
    p = {k: np.asarray(v, dtype=float) + 0.0 for k, v in params.items()  # -0.0 -> 0.0
         if k not in extra}
    n = len(next(iter(p.values()))) if p else 0
    K = p["eps_k"].shape[1] if "eps_k" in p and p["eps_k"].ndim == 2 else 0
    nb = (np.asarray(params["n_bath"], dtype=np.int64) if "n_bath" in params
          else np.full(n, K, dtype=np.int64))
    text = _rows_text(p, nb)
    if all(k in params for k in extra[1:]):
        pol = np.flatnonzero(polarised(params))
        if len(pol):
            dn = {"mu": np.asarray(params["mu_s"], float)[pol, 1] + 0.0,
                  "eps_k": np.asarray(params["eps_k_s"], float)[pol, 1] + 0.0,
                  "V_k": np.asarray(params["V_k_s"], float)[pol, 1] + 0.0}
            for i, t in zip(pol, _rows_text(dn, nb[pol])):
                text[i] += "spin_dn:" + t
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        d = hashlib.sha256(text[i].encode()).digest()
        out[i] = int.from_bytes(d[:8], "little")
    return out


def encode_hashes(h) -> str:
    """Sorted uint64 hashes as base64 text (little-endian; 8 bytes per sample)."""
    a = np.sort(np.asarray(h, dtype=np.uint64)).astype("<u8")
    return base64.b64encode(a.tobytes()).decode()


def decode_hashes(text: str) -> np.ndarray:
    """The inverse of :func:`encode_hashes`."""
    raw = base64.b64decode(text.encode(), validate=True)
    if len(raw) % 8:
        raise ValueError("sample hashes: the length is not a multiple of 8 bytes")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


# -- value rules ------------------------------------------------------------------------------
def _check_rules(file, dataset, values, index, rules, rows=None, fix=_FIX):
    """Apply ``rules`` (``(elementwise test, what the rule says)``) to ``values`` (sample on
    the first axis; only the samples ``rows`` if given); raise :class:`DatabaseValueError`
    naming the first offending sample and value."""
    values = np.asarray(values)
    if values.size == 0:
        return
    for test, text in rules:
        with np.errstate(invalid="ignore"):
            good = np.broadcast_to(test(values), values.shape)
        bad_rows = ~good.reshape(len(values), -1).all(axis=1)
        if rows is not None:
            bad_rows &= rows
        if not bad_rows.any():
            continue
        n = int(bad_rows.sum())
        r = int(np.flatnonzero(bad_rows)[0])
        row_bad = ~good[r].ravel() if values.ndim > 1 else np.array([True])
        v = values[r].ravel()[int(np.argmax(row_bad))] if values.ndim > 1 else values[r]
        where = ""
        if values.ndim > 1:
            pos = np.unravel_index(int(np.argmax(row_bad)), values.shape[1:])
            where = f"[{', '.join(str(int(i)) for i in pos)}]"
        idx = int(index[r]) if index is not None else r
        more = f" ({n} samples in all)" if n > 1 else ""
        raise DatabaseValueError(
            f"{file}: {dataset} of sample {idx}{where} holds {float(v)!r}{more}: {text}; a "
            f"value no AIM or solver produces, so {fix} (see the value rules in "
            "doc/database.rst)")


def _finite():
    return (np.isfinite, "not finite")


def check_params(params: dict, *, index=None, file="", fix=_FIX) -> None:
    """Refuse non-finite or unphysical AIM parameters (the rules in the module docstring).

    ``index``: the database sample number of each row (default ``0 ... N-1``); ``fix``:
    what the message tells the user to do.
    """
    _check = functools.partial(_check_rules, fix=fix)
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    for k, v in p.items():
        _check(file, f"params/{k}", v, index, [_finite()])
    _check_per_spin(p, index, file, fix)
    D = p.get("D")
    if "beta" in p:
        _check(file, "params/beta", p["beta"], index, [(lambda x: x > 0, "beta must be > 0")])
    if D is not None:
        _check(file, "params/D", D, index, [(lambda x: x > 0, "the half bandwidth D must be > 0")])
    if "U" in p:
        _check(file, "params/U", p["U"], index, [(lambda x: x >= 0, "U must be >= 0")])
    if D is None:
        return
    for k in ("U", "mu", "eps_k", "V_k", "mu_s", "eps_k_s", "V_k_s"):
        if k in p:
            Dk = D.reshape(-1, *([1] * (p[k].ndim - 1)))
            rule = (lambda x, Dk=Dk: np.abs(x) <= ENERGY_MAX * Dk,
                    f"|{k}| must be <= {ENERGY_MAX:g} D (the sample's half bandwidth)")
            _check(file, f"params/{k}", p[k], index, [rule])
    if "beta" in p:
        _check(file, "params/beta", p["beta"] * D, index,
               [(lambda x: x <= BETA_D_MAX, f"beta * D must be <= {BETA_D_MAX:g}")])


def _check_per_spin(p: dict, index, file, fix) -> None:
    """The format-4 rules: ``V_k_s >= 0``, ``1 <= n_bath <= K``, padding exactly 0, the
    legacy fields equal to spin up."""
    _check = functools.partial(_check_rules, fix=fix)
    if "V_k_s" in p:
        _check(file, "params/V_k_s", p["V_k_s"], index,
               [(lambda x: x >= 0, "a hopping V_k must be >= 0 (its sign is a gauge; "
                                   "store |V_k|)")])
    K = next((p[k].shape[-1] for k in ("eps_k_s", "V_k_s", "eps_k", "V_k") if k in p), None)
    if "n_bath" in p and K is not None:
        nb = p["n_bath"]
        _check(file, "params/n_bath", nb, index,
               [(lambda x: (x >= 1) & (x <= K) & (x == np.round(x)),
                 f"a sample uses 1 ... K = {K} bath sites (an integer)")])
        pad = np.arange(K)[None, :] >= nb[:, None]  # (N, K): True beyond the used sites
        for k in ("eps_k_s", "V_k_s", "eps_k", "V_k"):
            if k in p:
                m = pad[:, None, :] if p[k].ndim == 3 else pad
                _check(file, f"params/{k}", p[k], index,
                       [(lambda x, m=m: (x == 0) | ~m,
                         "a padded bath site (beyond params/n_bath) must hold exactly 0")])
    for legacy, per_spin in (("mu", "mu_s"), ("eps_k", "eps_k_s"), ("V_k", "V_k_s")):
        if legacy in p and per_spin in p:
            up = p[per_spin][:, 0]
            if up.shape != p[legacy].shape:
                raise DatabaseValueError(
                    f"{file}: params/{legacy} has shape {p[legacy].shape}, params/{per_spin} "
                    f"spin up {up.shape}; {fix}")
            _check(file, f"params/{legacy}", p[legacy], index,
                   [(lambda x, up=up: x == up,
                     f"it must equal spin up of params/{per_spin} (the legacy field holds "
                     "spin up)")])


def check_solver_values(solver, data: dict, beta, *, ok=None, index=None, file="",
                        fix=_FIX) -> None:
    """Refuse impossible values of one solver's successful solves.

    ``data``: any of ``G_tau`` (N, 2, T), ``G_l`` (N, 2, L), ``density`` (N, 2),
    ``double_occupancy`` (N,), ``wall_time`` (N,); ``beta`` (N,); ``ok`` (N,) bool: the
    samples whose values are checked (failed solves hold NaN by convention; default all).
    ``wall_time`` is checked on every sample.
    """
    _check = functools.partial(_check_rules, fix=fix)
    beta = np.asarray(beta, dtype=float)
    rows = None if ok is None else np.asarray(ok, bool)
    tol = VALUE_TOL
    pre = f"solvers/{solver}/"
    if "G_tau" in data:
        G = np.asarray(data["G_tau"], dtype=float)
        _check(file, pre + "G_tau", G, index, [
            _finite(),
            (lambda x: (x >= -1 - tol) & (x <= tol),
             "a fermionic G(tau) lies in [-1, 0]"),
        ], rows)
        _check(file, pre + "G_tau: G(0+) + G(beta-)", G[..., 0] + G[..., -1], index, [
            (lambda x: np.abs(x + 1) <= tol, "it must be -1")], rows)
    if "G_l" in data:
        L = np.asarray(data["G_l"], dtype=float)
        bound = np.sqrt(2 * np.arange(L.shape[-1]) + 1) * (1 + tol)
        b = beta.reshape(-1, *([1] * (L.ndim - 1))) * bound
        _check(file, pre + "G_l", L, index, [
            _finite(),
            (lambda x: np.abs(x) <= b, "|G_l| must be <= sqrt(2l+1) beta (from |G(tau)| <= 1)"),
        ], rows)
    unit = (lambda x: (x >= -tol) & (x <= 1 + tol), "it must lie in [0, 1]")
    if "density" in data:
        _check(file, pre + "density", data["density"], index, [_finite(), unit], rows)
    if "double_occupancy" in data:
        d = np.asarray(data["double_occupancy"], dtype=float)
        _check(file, pre + "double_occupancy", d, index, [
            (lambda x: np.isnan(x) | np.isfinite(x), "not finite (NaN means 'not known')"),
            (lambda x: np.isnan(x) | ((x >= -tol) & (x <= 1 + tol)),
             "it must lie in [0, 1] (or be NaN: not known)")], rows)
    if "wall_time" in data:
        _check(file, pre + "wall_time", data["wall_time"], index, [
            _finite(), (lambda x: x >= 0, "a time must be >= 0")])


def check_file_values(path) -> None:
    """Apply every value rule to the database ``path`` (all solvers, all samples)."""
    import h5py

    with h5py.File(path, "r") as f:
        params = {k: f[f"params/{k}"][()] for k in f["params"]}
        n = len(params["U"])
        check_params(params, file=str(path))
        x = f["tau_over_beta"][()]
        if not (np.all(np.isfinite(x)) and np.all((x >= 0) & (x <= 1))
                and np.all(np.diff(x) > 0)):
            raise DatabaseValueError(f"{path}: tau_over_beta must be finite, increasing and in "
                                     f"[0, 1]; {_FIX}")
        for s in f["solvers"]:
            g = f[f"solvers/{s}"]
            data = {k: g[k][()] for k in ("G_tau", "G_l", "density", "double_occupancy",
                                          "wall_time") if k in g}
            ok = g["ok"][()] if "ok" in g else np.ones(n, bool)
            check_solver_values(s, data, params["beta"], ok=ok, file=str(path))


# -- full disks -------------------------------------------------------------------------------
def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` or an exception in its chain is ENOSPC (h5py hides the errno in
    the message of a ``RuntimeError``/``OSError``: "errno = 28")."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        text = str(exc)
        if "No space left on device" in text or f"errno = {errno.ENOSPC}," in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def atomic_write(path, data, *, resume_hint: str, mode: int = 0o666,
                 no_clobber: bool = False) -> Path:
    """Write the bytes ``data`` to ``path`` through a unique temporary file in its folder
    (synced, then renamed over ``path``); nothing is left behind on failure.

    ENOSPC raises :class:`DiskFullError`: one line naming the file, ENOSPC and
    ``resume_hint`` (how to continue once space is freed).  ``no_clobber``: an existing
    ``path`` is never replaced (``FileExistsError``; the file is linked into place, which
    is atomic).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if no_clobber:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{path} appeared while it was being written (another "
                                      "process wrote it); it is left as it is") from None
            except OSError as exc:  # no hard links on this file system
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if path.exists():
                    raise FileExistsError(f"{path} appeared while it was being written") \
                        from None
                os.replace(tmp, path)
            else:
                tmp.unlink()
        else:
            os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        if is_disk_full(exc):
            free = _free_mib(path.parent)
            raise DiskFullError(
                f"no space left on device (ENOSPC) writing {path} ({len(data) / 2**20:.1f} "
                f"MiB, {free} MiB free); {resume_hint}") from None
        raise
    return path


def _free_mib(folder) -> str:
    try:
        st = os.statvfs(folder)
        return f"{st.f_bavail * st.f_frsize / 2**20:.1f}"
    except OSError:  # pragma: no cover
        return "?"


def h5_image(fill) -> memoryview:
    """The bytes of an HDF5 file built in memory by ``fill(h5py.File)`` (for
    :func:`atomic_write`: HDF5 itself never writes to the disk)."""
    import h5py

    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        fill(f)
    return bio.getbuffer()


# -- the output lock --------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    """True while the process ``pid`` runs on this host (a zombie -- killed, not yet
    reaped by its parent -- does not run)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc: trust kill()
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class OutputLock:
    """Exclusive lock of an output file: ``OUTPUT.lock`` with the owner's pid, host, start
    time and command, held with ``flock`` for the life of the owner.

    ``OutputLock(path).acquire()`` returns the lock or raises :class:`OutputLockedError`
    naming the owner.  A lock file whose ``flock`` is free and whose pid does not run on
    this host (a run that was killed) is taken over; ``took_over`` then holds the dead
    owner's record.  A lock file from another host is never taken over.

    Attributes
    ----------
    path : Path, the lock file
    took_over : dict or None, the record of a dead owner whose lock was taken over
    """

    def __init__(self, path):
        self.path = Path(path)
        self.took_over = None
        self._fd = None

    @staticmethod
    def _record() -> dict:
        import sys

        return {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(sys.argv)[:500]}

    @staticmethod
    def _read(fd) -> dict:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            rec = json.loads(raw.decode() or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            rec = {"unreadable": raw[:100].decode(errors="replace")}
        return rec if isinstance(rec, dict) else {"unreadable": str(rec)[:100]}

    def _refuse(self, rec, why):
        who = (f"pid {rec.get('pid', '?')} on host {rec.get('host', '?')} (since "
               f"{rec.get('started', '?')}: {rec.get('command', '?')})")
        raise OutputLockedError(
            f"{self.path.with_suffix('') if self.path.suffix == '.lock' else self.path} is "
            f"being written by {who}; {why}")

    def acquire(self) -> OutputLock:
        import fcntl

        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                rec = self._read(fd)
                os.close(fd)
                self._refuse(rec, "wait for that run to finish (or stop it); two runs on one "
                                  "output would corrupt it")
            except OSError:  # a file system without flock: the pid record decides alone
                pass
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # removed or replaced by its owner between our open and flock
                os.close(fd)
                continue
            rec = self._read(fd)
            if rec:
                here = rec.get("host") == socket.gethostname()
                pid = rec.get("pid")
                if not here:
                    os.close(fd)
                    self._refuse(rec, f"a lock from another host is never taken over: if that "
                                      f"run is gone, delete {self.path} and start again")
                # the flock is free, so its owner has exited or is exiting; the pid is
                # the guard where flock does nothing (some network file systems)
                deadline = time.monotonic() + 2.0
                while isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
                    if time.monotonic() > deadline:
                        os.close(fd)
                        self._refuse(rec, f"that process is still running; if it is not a "
                                          f"triqs-mlsolver run, delete {self.path}")
                    time.sleep(0.05)
                self.took_over = rec
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(self._record()).encode())
            os.fsync(fd)
            self._fd = fd
            return self
        raise OutputLockedError(f"{self.path}: could not take the lock (it keeps changing)")

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
