# SPDX-License-Identifier: Apache-2.0
"""Configuration of ``triqs-mlsolver dmft``: one source of defaults, strict validation.

A config is a TOML file with the sections below; every key is optional and
defaults to :data:`DEFAULTS`.  Unknown sections or keys, wrong types and
values out of range are :class:`DMFTConfigError` (a ``ValueError``) naming
the key and the fix, raised before any solver runs.

.. code-block:: toml

    [model]
    lattice = "bethe"        # "bethe" (semicircle), "bethe_afm" (Neel state), "square" or "cubic"
    D = 1.0                  # half bandwidth (energy unit)
    beta = 50.0              # inverse temperature
    mu = "half-filling"      # "half-filling" (mu = U/2 at each U) or a number
    # n_k = 64               # k-points per direction (square and cubic only; even)

    [scan]
    U = [1.0, 2.0, 2.8, 3.5]              # or U = {start = 1.0, stop = 3.5, step = 0.5}
    direction = "both"                    # "up", "down" or "both"

    [solvers]
    names = ["ipt", "hubbard_i"]          # registry names (triqs-mlsolver solvers)
    [solvers.ed]                          # options of one solver (its registered names)
    n_bath = 4

    [loop]
    mixing = 0.5             # weight of the new Delta, in (0, 1]
    tol = 1e-6               # max|G_new - G| at convergence
    max_iter = 300
    n_iw = 512               # positive Matsubara frequencies
    n_tau = 2049             # tau points (odd: G(beta/2) is a grid point)
    n_l = 30                 # Legendre coefficients

    [output]
    directory = "dmft_output"
    archive = true           # dmft_scan.h5 (TRIQS HDF5 scheme)
    plot = true              # Z_of_U.png
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from .._config import check_sections, config_to_toml, read_toml

__all__ = ["DEFAULTS", "KEYS", "DMFTConfigError", "validate_config", "load_config",
           "config_to_toml", "lattice_from_config", "example_config_path"]

DEFAULTS = {
    "model": {"lattice": "bethe", "D": 1.0, "beta": 50.0, "mu": "half-filling", "n_k": 64},
    "scan": {"U": [1.0, 2.0, 2.5, 3.0, 3.5], "direction": "both"},
    "solvers": {"names": ["ipt", "hubbard_i"]},
    "loop": {"mixing": 0.5, "tol": 1e-6, "max_iter": 300, "n_iw": 512, "n_tau": 2049,
             "n_l": 30},
    "output": {"directory": "dmft_output", "archive": True, "plot": True},
}

#: One line per key (the documentation table in doc/dmft.rst is checked against it).
KEYS = {
    "model": {
        "lattice": '"bethe" (semicircular DOS), "bethe_afm" (the Bethe lattice with two '
                   'sublattices, Neel order), "square" or "cubic" (cosine band, k-sum)',
        "D": "half bandwidth, > 0 (the energy unit)",
        "beta": "inverse temperature, > 0",
        "mu": '"half-filling" (mu = U/2 at each U) or a number (fixed mu)',
        "n_k": "k-points per direction for square/cubic, even, >= 2 (default 64)",
    },
    "scan": {
        "U": "list of U >= 0, or a table {start, stop, step} (stop included)",
        "direction": '"up" (from the metal), "down" (from the insulator) or "both"',
    },
    "solvers": {
        "names": "list of registered solver names; options in [solvers.<name>] tables",
    },
    "loop": {
        "mixing": "weight of the new hybridisation, 0 < mixing <= 1",
        "tol": "convergence threshold on max|G_new - G|, > 0",
        "max_iter": "iterations per U, >= 1",
        "n_iw": "positive Matsubara frequencies, >= 16",
        "n_tau": "tau points, >= 3 (odd recommended)",
        "n_l": "Legendre coefficients, >= 1",
    },
    "output": {
        "directory": "where dmft_scan.h5, dmft_scan.txt and Z_of_U.png go",
        "archive": "write dmft_scan.h5 (true/false)",
        "plot": "write Z_of_U.png (true/false)",
    },
}

LATTICES = ("bethe", "bethe_afm", "square", "cubic")
DIRECTIONS = ("up", "down", "both")
_MAX_U_POINTS = 1000


class DMFTConfigError(ValueError):
    """A ``triqs-mlsolver dmft`` configuration is invalid (the message names the key and
    the fix)."""


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(sec, key, v, *, lo=None, lo_open=False, hi=None):
    if not _is_number(v) or not math.isfinite(v):
        raise DMFTConfigError(f"[{sec}] {key} = {v!r}: expected a number ({KEYS[sec][key]})")
    v = float(v)
    if lo is not None and (v <= lo if lo_open else v < lo) or hi is not None and v > hi:
        raise DMFTConfigError(f"[{sec}] {key} = {v!r} is out of range: {KEYS[sec][key]}")
    return v


def _int(sec, key, v, lo):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise DMFTConfigError(
            f"[{sec}] {key} = {v!r}: expected an integer >= {lo} ({KEYS[sec][key]})")
    return v


def _bool(sec, key, v):
    if not isinstance(v, bool):
        raise DMFTConfigError(f"[{sec}] {key} = {v!r}: expected true or false")
    return v


def _choice(sec, key, v, choices):
    if v not in choices:
        raise DMFTConfigError(
            f"[{sec}] {key} = {v!r}: use one of {', '.join(repr(c) for c in choices)}")
    return v


def _u_values(v):
    if isinstance(v, dict):
        allowed = ("start", "stop", "step")
        for k in v:
            if k not in allowed:
                raise DMFTConfigError(
                    f"unknown key {k!r} in [scan] U table; allowed keys: {', '.join(allowed)}")
        missing = [k for k in allowed if k not in v]
        if missing:
            raise DMFTConfigError(
                f"[scan] U table lacks {', '.join(missing)}; write "
                "U = {start = 1.0, stop = 3.5, step = 0.5}")
        a, b, h = (v[k] for k in allowed)
        if not all(_is_number(x) and math.isfinite(x) for x in (a, b, h)):
            raise DMFTConfigError(f"[scan] U = {v!r}: start, stop and step must be numbers")
        if h <= 0 or b < a:
            raise DMFTConfigError(
                f"[scan] U = {v!r}: need step > 0 and stop >= start (a down sweep is "
                "direction = \"down\", not a negative step)")
        count = int(math.floor((b - a) / h + 1e-9)) + 1
        if count > _MAX_U_POINTS:
            raise DMFTConfigError(
                f"[scan] U = {v!r} gives {count} points; use a larger step (at most "
                f"{_MAX_U_POINTS} points)")
        values = [round(a + i * h, 12) for i in range(count)]
    elif isinstance(v, list):
        if not v or not all(_is_number(x) and math.isfinite(x) for x in v):
            raise DMFTConfigError(
                f"[scan] U = {v!r}: expected a non-empty list of numbers, or a table "
                "{start, stop, step}")
        values = [float(x) for x in v]
    else:
        raise DMFTConfigError(
            f"[scan] U = {v!r}: expected a list of numbers or a table {{start, stop, step}}")
    if min(values) < 0:
        raise DMFTConfigError(f"[scan] U = {v!r}: U must be >= 0 (repulsive)")
    if len(set(values)) != len(values):
        raise DMFTConfigError(f"[scan] U = {v!r}: repeated values; give each U once")
    return sorted(values)


def _check_solvers(body):
    from ..solvers import available_solvers, get_solver

    names = body.get("names", DEFAULTS["solvers"]["names"])
    if not (isinstance(names, list) and names and all(isinstance(x, str) for x in names)):
        raise DMFTConfigError(
            f"[solvers] names = {names!r}: expected a non-empty list of solver names, e.g. "
            '["ipt", "hubbard_i"]')
    if len(set(names)) != len(names):
        raise DMFTConfigError(f"[solvers] names = {names!r}: each solver once")
    avail = available_solvers()
    for name in names:
        if name not in avail:
            raise DMFTConfigError(
                f"[solvers] names: unknown solver {name!r}; available: {', '.join(avail)}")
    out = {"names": list(names)}
    for key, val in body.items():
        if key == "names":
            continue
        if not isinstance(val, dict):
            raise DMFTConfigError(
                f"unknown key {key!r} in [solvers]; allowed keys: names, and one table "
                f"[solvers.<name>] of options per solver in names ({', '.join(names)})")
        if key not in names:
            raise DMFTConfigError(
                f"[solvers.{key}] gives options for {key!r}, which is not in [solvers] names "
                f"= {names}; add it to names or remove the table")
        spec = get_solver(key)
        opts = {}
        for opt, v in val.items():
            if opt not in spec.options:
                allowed = ", ".join(spec.options) or "none"
                raise DMFTConfigError(
                    f"unknown key {opt!r} in [solvers.{key}]; solver {key!r} accepts: {allowed}")
            opts[opt] = _check_option_type(key, opt, v, spec.options[opt])
        out[key] = opts
    return out


def _check_option_type(solver, opt, v, default):
    where = f"[solvers.{solver}] {opt} = {v!r}"
    if default is None or isinstance(v, type(default)) and not (
        isinstance(v, bool) and not isinstance(default, bool)
    ):
        return v
    if isinstance(default, bool):
        raise DMFTConfigError(f"{where}: expected true or false (default {default})")
    if isinstance(default, int):
        raise DMFTConfigError(f"{where}: expected an integer (default {default})")
    if isinstance(default, float):
        if _is_number(v):
            return float(v)
        raise DMFTConfigError(f"{where}: expected a number (default {default})")
    if isinstance(default, str):
        if isinstance(v, int) and not isinstance(v, bool):
            # an option that is a keyword or a number, such as ED's n_bath ('auto' or a
            # number of bath sites): the solver checks the value itself
            return v
        raise DMFTConfigError(f"{where}: expected a string (default {default!r})")
    return v


def validate_config(raw: dict) -> dict:
    """Merge ``raw`` into :data:`DEFAULTS` and check every value; returns the full config.

    ``scan.U`` is returned as the sorted list of values, ``solvers`` as
    ``{'names': [...], '<name>': {options}, ...}`` and ``model.n_k`` only
    for the k-sum lattices.
    """
    if not isinstance(raw, dict):
        raise DMFTConfigError("the configuration must be a table of sections")
    solvers_raw = raw.get("solvers", {})
    if not isinstance(solvers_raw, dict):
        raise DMFTConfigError("[solvers] must be a table of keys")
    shallow = {k: v for k, v in raw.items() if k != "solvers"}
    check_sections(shallow, DEFAULTS, DMFTConfigError)
    out = copy.deepcopy(DEFAULTS)
    for sec, body in shallow.items():
        out[sec].update(body)

    m = out["model"]
    _choice("model", "lattice", m["lattice"], LATTICES)
    m["D"] = _number("model", "D", m["D"], lo=0.0, lo_open=True)
    m["beta"] = _number("model", "beta", m["beta"], lo=0.0, lo_open=True)
    if isinstance(m["mu"], str):
        if m["mu"] != "half-filling":
            raise DMFTConfigError(
                f"[model] mu = {m['mu']!r}: use \"half-filling\" or a number")
    else:
        m["mu"] = _number("model", "mu", m["mu"])
    if m["lattice"] in ("bethe", "bethe_afm"):
        if "n_k" in raw.get("model", {}):
            raise DMFTConfigError(
                "[model] n_k is only used by lattice = \"square\" or \"cubic\"; remove it "
                "for the Bethe lattice")
        del m["n_k"]
    else:
        _int("model", "n_k", m["n_k"], 2)
        if m["n_k"] % 2:
            raise DMFTConfigError(
                f"[model] n_k = {m['n_k']}: use an even number (it keeps the k-grid "
                "particle-hole symmetric)")

    s = out["scan"]
    s["U"] = _u_values(s["U"])
    _choice("scan", "direction", s["direction"], DIRECTIONS)

    out["solvers"] = _check_solvers(solvers_raw)

    lp = out["loop"]
    lp["mixing"] = _number("loop", "mixing", lp["mixing"], lo=0.0, lo_open=True, hi=1.0)
    lp["tol"] = _number("loop", "tol", lp["tol"], lo=0.0, lo_open=True)
    _int("loop", "max_iter", lp["max_iter"], 1)
    _int("loop", "n_iw", lp["n_iw"], 16)
    _int("loop", "n_tau", lp["n_tau"], 3)
    _int("loop", "n_l", lp["n_l"], 1)

    o = out["output"]
    if not isinstance(o["directory"], str) or not o["directory"]:
        raise DMFTConfigError(
            f"[output] directory = {o['directory']!r}: expected a non-empty path string")
    _bool("output", "archive", o["archive"])
    _bool("output", "plot", o["plot"])
    return out


def load_config(path) -> dict:
    """Read and validate a TOML config file."""
    return validate_config(read_toml(
        path, DMFTConfigError, "; give the path of a TOML file (start from "
        "`triqs-mlsolver dmft --print-example > dmft.toml`)"))


def lattice_from_config(cfg: dict):
    """The :class:`~triqs_mlsolver.dmft.Lattice` of a validated config."""
    from .lattice import Bethe, BetheAFM, KSumLattice

    m = cfg["model"]
    if m["lattice"] == "bethe":
        return Bethe(D=m["D"])
    if m["lattice"] == "bethe_afm":
        return BetheAFM(D=m["D"])
    dim = {"square": 2, "cubic": 3}[m["lattice"]]
    return KSumLattice.hypercubic(dim, m["n_k"], D=m["D"])


def example_config_path() -> Path:
    """The shipped example ``data/dmft_bethe.toml``."""
    return Path(__file__).resolve().parents[1] / "data" / "dmft_bethe.toml"
