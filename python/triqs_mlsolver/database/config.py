# SPDX-License-Identifier: Apache-2.0
"""Configuration of database generation: one source of defaults, strict validation.

A config is a TOML file with the sections below; every key is optional and
defaults to :data:`DEFAULTS` (the seed lecture's recipe).  Unknown keys, empty
ranges and unphysical values are errors raised *before* any MPI work starts,
naming the key and the fix.

.. code-block:: toml

    [sampler]
    mode = "seed"          # "seed": random discrete baths; "dmft": smooth Delta fitted to a bath;
                           # "bethe": Bethe-lattice DMFT-like Delta (metals, Mott insulators);
                           # "single_band": every temperature, coupling, filling, lattice and
                           # magnetic state of single-band DMFT (database/single_band.py);
                           # "visited": the AIMs a solver recorded (generate --from visited.h5)
    visited = ""           # mode "visited": the file of visited AIMs
    visited_sha256 = ""    # ... its sha256 (set by generate --from; checked on --resume)
    visited_only = "all"   # mode "visited": "all" or "out_of_domain" visits
    beta_D = [1.0, 400.0]  # mode "single_band": beta*D log-uniform in this range
    filling = [0.2, 1.8]   # mode "single_band": total filling of the lattice samples
    lattices = ["bethe", "square", "cubic", "random"]   # mode "single_band"
    p_discrete = 0.3       # mode "single_band": share of discrete (seed-table) baths
    p_polarised = 0.25     # mode "single_band": share of spin-polarised samples
    n_bath_min = 3         # mode "single_band": fewest bath sites (n_bath: the most)
    fit_tol = 1e-3         # mode "single_band": relative max error of the bath fit
    beta_D_hot = 0.0       # mode "single_band": below this beta*D at most n_bath_hot sites
    n_bath_hot = 5         # (the reference's cost; 0 = no such limit)
    select = []            # importance sampling: two cheap solvers, e.g. ["ed3", "ed3e"];
    select_min = 0.0       # each sample is the first candidate on which they disagree by at
    select_tries = 100     # least select_min (RMS of G(tau)); sampler.sample_params
    n_samples = 10000
    seed = 2021
    U = [1.0, 10.0]        # uniform range
    W = [1.0, 10.0]        # bandwidth W = 2D
    eps = [-1.0, 1.0]      # impurity level relative to half filling: mu = U/2 - eps
    beta = [1, 2, 5, 10, 20, 50]   # chosen uniformly from the list
    n_bath = 4             # bath sites of the AIM (the reference ED solves it exactly)

    [solvers]
    cheap = ["hubbard_i", "ipt", "nca", "ed1", "ed2", "ed3"]
    reference = "ed"

    [grid]
    n_iw = 1025            # Matsubara points the solvers use
    n_tau = 201            # stored tau points per sample (both ends included)
    tau_mesh = "uniform"   # "uniform", or "log": geometric towards both ends (resolves
                           # G(tau) at any beta; n_tau odd; database/generate.py)
    n_l = 40               # stored Legendre coefficients

    [output]
    chunk_size = 16        # samples per crash-safe chunk file
"""

from __future__ import annotations

import copy
import math

from .._config import check_sections, config_to_toml, read_toml

__all__ = ["DEFAULTS", "ConfigError", "load_config", "validate_config", "config_to_toml"]

DEFAULTS = {
    "sampler": {
        "mode": "seed",
        "n_samples": 10000,
        "seed": 2021,
        "U": [1.0, 10.0],
        "W": [1.0, 10.0],
        "eps": [-1.0, 1.0],
        "beta": [1.0, 2.0, 5.0, 10.0, 20.0, 50.0],
        "n_bath": 4,
        "visited": "",
        "visited_sha256": "",
        "visited_only": "all",
        "beta_D": [1.0, 400.0],
        "filling": [0.2, 1.8],
        "lattices": ["bethe", "square", "cubic", "random"],
        "p_discrete": 0.3,
        "p_polarised": 0.25,
        "n_bath_min": 3,
        "fit_tol": 1e-3,
        "beta_D_hot": 0.0,
        "n_bath_hot": 5,
        "select": [],
        "select_min": 0.0,
        "select_tries": 100,
    },
    "solvers": {
        "cheap": ["hubbard_i", "ipt", "nca", "ed1", "ed2", "ed3"],
        "reference": "ed",
    },
    "grid": {"n_iw": 1025, "n_tau": 201, "n_l": 40, "tau_mesh": "uniform"},
    "output": {"chunk_size": 16},
}


class ConfigError(ValueError):
    """A database configuration is invalid (the message names the key and the fix)."""


def _range(sec, key, v, lo=None):
    if not (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    ):
        raise ConfigError(f"[{sec}] {key} = {v!r}: expected a range [min, max] of two numbers")
    a, b = float(v[0]), float(v[1])
    if not (math.isfinite(a) and math.isfinite(b)) or b < a:
        raise ConfigError(
            f"[{sec}] {key} = {v!r}: the range is empty or not finite (need min <= max)"
        )
    if lo is not None and a < lo:
        raise ConfigError(f"[{sec}] {key} = {v!r}: values must be >= {lo}")
    return [a, b]


def _int(sec, key, v, lo, hi=None):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ConfigError(f"[{sec}] {key} = {v!r}: expected an integer {bound}")
    return v


def validate_config(cfg: dict) -> dict:
    """Merge ``cfg`` into :data:`DEFAULTS` and check every value; returns the full config."""
    check_sections(cfg, DEFAULTS, ConfigError)
    out = copy.deepcopy(DEFAULTS)
    for sec, body in cfg.items():
        out[sec].update(body)
    s = out["sampler"]
    if s["mode"] not in ("seed", "dmft", "bethe", "single_band", "visited"):
        raise ConfigError(f"[sampler] mode = {s['mode']!r}: use 'seed', 'dmft', 'bethe', "
                          "'single_band' or 'visited'")
    for key in ("visited", "visited_sha256"):
        if not isinstance(s[key], str):
            raise ConfigError(f"[sampler] {key} = {s[key]!r}: expected a string")
    if s["visited_only"] not in ("all", "out_of_domain"):
        raise ConfigError(f"[sampler] visited_only = {s['visited_only']!r}: use 'all' or "
                          "'out_of_domain'")
    if (s["mode"] == "visited") != bool(s["visited"]):
        raise ConfigError("[sampler] mode = 'visited' needs visited = FILE (the AIMs a solver "
                          "recorded; `triqs-mlsolver generate --from FILE` sets both), and "
                          "visited = FILE needs mode = 'visited'")
    _int("sampler", "n_samples", s["n_samples"], 1)
    _int("sampler", "seed", s["seed"], 0)
    s["U"] = _range("sampler", "U", s["U"], lo=0.0)
    s["W"] = _range("sampler", "W", s["W"])
    if s["W"][0] <= 0:
        raise ConfigError(f"[sampler] W = {s['W']}: the bandwidth must be > 0")
    s["eps"] = _range("sampler", "eps", s["eps"])
    betas = s["beta"]
    if not (isinstance(betas, list) and betas):
        raise ConfigError("[sampler] beta: expected a non-empty list of inverse temperatures")
    for b in betas:
        if (
            isinstance(b, bool)
            or not isinstance(b, (int, float))
            or not b > 0
            or not math.isfinite(b)
        ):
            raise ConfigError(f"[sampler] beta contains {b!r}: every beta must be a number > 0")
    s["beta"] = [float(b) for b in betas]
    _int("sampler", "n_bath", s["n_bath"], 1, 9)
    s["beta_D"] = _range("sampler", "beta_D", s["beta_D"])
    if s["beta_D"][0] <= 0:
        raise ConfigError(f"[sampler] beta_D = {s['beta_D']}: beta*D must be > 0")
    s["filling"] = _range("sampler", "filling", s["filling"])
    if not (0 < s["filling"][0] and s["filling"][1] < 2):
        raise ConfigError(f"[sampler] filling = {s['filling']}: the total filling must lie "
                          "strictly between 0 and 2")
    from .single_band import LATTICES

    if not (isinstance(s["lattices"], list) and s["lattices"]
            and all(x in LATTICES for x in s["lattices"])):
        raise ConfigError(f"[sampler] lattices = {s['lattices']!r}: a non-empty list of "
                          f"{', '.join(map(repr, LATTICES))}")
    for key in ("p_discrete", "p_polarised"):
        v_ = s[key]
        if isinstance(v_, bool) or not isinstance(v_, (int, float)) or not 0 <= v_ <= 1:
            raise ConfigError(f"[sampler] {key} = {v_!r}: expected a probability in [0, 1]")
        s[key] = float(v_)
    _int("sampler", "n_bath_min", s["n_bath_min"], 1, 9)
    if s["mode"] == "single_band" and s["n_bath_min"] > s["n_bath"]:
        raise ConfigError(f"[sampler] n_bath_min = {s['n_bath_min']} > n_bath = {s['n_bath']}: "
                          "mode 'single_band' fits between n_bath_min and n_bath sites")
    ft = s["fit_tol"]
    if isinstance(ft, bool) or not isinstance(ft, (int, float)) or not 0 < ft < 1:
        raise ConfigError(f"[sampler] fit_tol = {ft!r}: expected a number in (0, 1), e.g. 1e-3")
    s["fit_tol"] = float(ft)
    bh = s["beta_D_hot"]
    if isinstance(bh, bool) or not isinstance(bh, (int, float)) or not 0 <= bh < math.inf:
        raise ConfigError(f"[sampler] beta_D_hot = {bh!r}: expected a number >= 0 (0: no "
                          "limit), e.g. 16")
    s["beta_D_hot"] = float(bh)
    _int("sampler", "n_bath_hot", s["n_bath_hot"], 1, 9)
    if s["mode"] == "single_band" and s["beta_D_hot"] > 0 and s["n_bath_hot"] < s["n_bath_min"]:
        raise ConfigError(f"[sampler] n_bath_hot = {s['n_bath_hot']} < n_bath_min = "
                          f"{s['n_bath_min']}: the hot-temperature limit must allow "
                          "n_bath_min sites")
    sel = s["select"]
    if not (isinstance(sel, list) and (not sel or (
            len(sel) == 2 and all(isinstance(x, str) for x in sel) and sel[0] != sel[1]))):
        raise ConfigError(f"[sampler] select = {sel!r}: expected [] (no selection) or two "
                          "different cheap solver names, e.g. [\"ed3\", \"ed3e\"]")
    if sel and s["mode"] == "visited":
        raise ConfigError("[sampler] select: mode 'visited' solves the recorded AIMs as they "
                          "are; remove select (or use another mode)")
    sm = s["select_min"]
    if isinstance(sm, bool) or not isinstance(sm, (int, float)) or not 0 <= sm < math.inf:
        raise ConfigError(f"[sampler] select_min = {sm!r}: expected a number >= 0 (the RMS of "
                          "G(tau) by which the select solvers must disagree), e.g. 2e-3")
    s["select_min"] = float(sm)
    _int("sampler", "select_tries", s["select_tries"], 1)
    v = out["solvers"]
    if not isinstance(v["cheap"], list) or not all(isinstance(x, str) for x in v["cheap"]):
        raise ConfigError("[solvers] cheap: expected a list of solver names")
    if not isinstance(v["reference"], str):
        raise ConfigError("[solvers] reference: expected a solver name")
    names = [*v["cheap"], v["reference"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"[solvers]: solver names must be unique, got {names}")
    from ..solvers import available_solvers

    avail = available_solvers()
    for name in names:
        if name not in avail:
            raise ConfigError(f"[solvers]: unknown solver {name!r}; available: {', '.join(avail)}")
    for name in sel:
        if name not in avail:
            raise ConfigError(f"[sampler] select: unknown solver {name!r}; available: "
                              f"{', '.join(avail)}")
    g = out["grid"]
    _int("grid", "n_iw", g["n_iw"], 16)
    _int("grid", "n_tau", g["n_tau"], 3)
    if g["tau_mesh"] not in ("uniform", "log"):
        raise ConfigError(f"[grid] tau_mesh = {g['tau_mesh']!r}: use 'uniform' or 'log'")
    if g["tau_mesh"] == "log" and (g["n_tau"] < 7 or g["n_tau"] % 2 == 0):
        raise ConfigError(f"[grid] n_tau = {g['n_tau']}: the 'log' tau mesh needs an odd "
                          "number of points >= 7 (0, the geometric half, its mirror, beta)")
    _int("grid", "n_l", g["n_l"], 1)
    _int("output", "chunk_size", out["output"]["chunk_size"], 1)
    return out


def load_config(path) -> dict:
    """Read and validate a TOML config (``None``: the defaults)."""
    if path is None:
        return validate_config({})
    return validate_config(read_toml(
        path, ConfigError, "; give the path of a TOML file (see doc/database.rst for the keys)"))
