# SPDX-License-Identifier: Apache-2.0
"""The ``single_band`` sampler (issue 18's database recipe): deterministic samples, the
documented coverage, and physics of the lattice hybridisations (causal, second moment
D^2/4, the filling the chemical potential was solved for, particle-hole and
antiferromagnetic structure)."""

from pathlib import Path

import numpy as np
import pytest
import triqs_mlsolver
from scipy.integrate import quad
from triqs_mlsolver.database import single_band as sb
from triqs_mlsolver.database.config import ConfigError, load_config, validate_config
from triqs_mlsolver.gf.transforms import matsubara_freqs, semicircle_g

RECIPE = Path(triqs_mlsolver.__file__).parent / "data" / "single_band_database.toml"
CFG = load_config(RECIPE)  # the shipped recipe


def draw(i, seed=5, cfg=CFG):
    return sb.sample(cfg, i, np.random.default_rng([seed, i]))


def test_samples_are_deterministic_and_cover_the_recipe():
    ps = [draw(i) for i in range(150)]
    again = draw(17)
    assert np.array_equal(again.eps_k, ps[17].eps_k) and np.array_equal(again.mu, ps[17].mu)
    beta = np.array([p.beta for p in ps])
    U = np.array([p.U for p in ps])
    assert 1.0 <= beta.min() and beta.max() <= 400.0
    assert beta.min() < 3 and beta.max() > 100  # log-uniform over 2.6 decades
    assert 0 <= U.min() < 1 and 9 < U.max() <= 10
    fam = [p.extra["family"] for p in ps]
    assert 0.15 < fam.count("discrete") / len(ps) < 0.45
    pol = np.mean([not p.spin_symmetric for p in ps])
    assert 0.12 < pol < 0.4
    lat = {p.extra["lattice"] for p in ps if p.extra["family"] == "lattice"}
    assert lat == set(sb.LATTICES)
    k = np.array([p.n_bath for p in ps])
    assert k.min() >= 3 and k.max() <= 8
    for p in ps:
        assert np.all(np.isfinite(p.eps_k)) and np.all(p.V_k >= 0)
        assert p.D == 1.0


def test_lattice_hybridisations_have_the_lattice_second_moment():
    """Delta(z) -> (D^2/4)/z with D = 1 (the variance of every density is 1/4): i w Delta(i w)
    at w = 200 is 1/4 up to the next order, O(1/w^2); AFM baths (D^2/4) G -> 1/(4 i w) too."""
    rng = np.random.default_rng(4)
    iw = np.array([200j])
    for _ in range(40):
        delta, _, info = sb._lattice_delta(rng, CFG["sampler"], float(rng.uniform(0, 10)),
                                           float(rng.uniform(1, 400)), iw)
        np.testing.assert_allclose((iw * delta).real, 0.25, rtol=0, atol=5e-3)


def test_fits_reach_the_tolerance_or_use_the_most_sites():
    for i in range(80):
        p = draw(i, seed=9)
        if p.extra["family"] != "lattice":
            continue
        err = max(p.extra["fit_rel_error"])
        s = CFG["sampler"]
        most = s["n_bath_hot"] if p.beta < s["beta_D_hot"] else s["n_bath"]
        assert p.n_bath <= most
        assert p.n_bath == most or err <= s["fit_tol"]


def test_hot_samples_have_at_most_n_bath_hot_sites():
    """The recipe's cost rule: below beta*D = beta_D_hot at most n_bath_hot sites (both
    families); with the rule off (beta_D_hot = 0) the same draws reach more sites there."""
    s = CFG["sampler"]
    assert s["beta_D_hot"] > 0
    off = validate_config({"sampler": {**s, "beta_D_hot": 0.0}})
    hot, hot_off = [], []
    for i in range(400):
        rng = np.random.default_rng([3, i])
        lo, hi = s["beta_D"]
        if np.exp(rng.uniform(np.log(lo), np.log(hi))) >= s["beta_D_hot"]:
            continue  # only the hot draws (the first draw of sample() is beta)
        hot.append(draw(i, seed=3))
        if hot[-1].extra["family"] == "discrete":
            hot_off.append(draw(i, seed=3, cfg=off))
        if len(hot) >= 40:
            break
    assert len(hot) >= 40 and len(hot_off) >= 8
    assert all(p.beta < s["beta_D_hot"] and p.n_bath <= s["n_bath_hot"] for p in hot)
    assert max(p.n_bath for p in hot_off) > s["n_bath_hot"]


@pytest.mark.parametrize("name", ["square", "cubic"])
def test_lattice_densities(name):
    e, w = sb.lattice_dos(name)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w @ e == pytest.approx(0.0, abs=1e-12)
    assert w @ e**2 == pytest.approx(0.25, abs=1e-12)
    # t' = 0 square and cubic densities are symmetric about 0
    np.testing.assert_allclose(np.sort(e), -np.sort(e)[::-1], atol=1e-3)


def test_density_from_matsubara_sum():
    """U = 0 semicircle: <n> from the Matsubara sum against the direct integral."""
    beta, mu = 20.0, 0.3
    iw = matsubara_freqs(beta, sb.N_IW)[sb.N_IW:]
    n = sb._density(semicircle_g(iw + mu, 1.0), iw, beta)

    def integrand(x):
        return 2 / np.pi * np.sqrt(1 - x**2) / (np.exp(beta * (x - mu)) + 1)

    exact = quad(integrand, -1, 1, points=[mu])[0]
    assert n == pytest.approx(exact, abs=2e-4)


def test_mu_solves_for_the_target_filling():
    rng = np.random.default_rng(3)
    s = CFG["sampler"]
    iw = matsubara_freqs(30.0, sb.N_IW)[sb.N_IW:]
    for _ in range(30):
        delta, mus, info = sb._lattice_delta(rng, s, 3.0, 30.0, iw)
        assert np.all(delta.imag < 0)  # causal
        # brentq's xtol 1e-4 in mu moves n by at most 1e-4 x (2 x max DOS ~ 3)
        assert info["n_lattice"] == pytest.approx(info["n_target"], abs=1e-3)


def test_half_filled_symmetric_samples_are_particle_hole_symmetric():
    found = 0
    for i in range(200):
        p = draw(i, seed=21)
        e = p.extra
        if e["family"] == "lattice" and e["n_target"] == 1.0 and p.spin_symmetric and \
                e["lattice"] in ("bethe", "cubic"):
            found += 1
            assert float(p.mu[0]) == pytest.approx(p.U / 2, abs=1e-12)
            eps = np.sort(p.eps_k[0])
            np.testing.assert_allclose(eps, -eps[::-1], atol=1e-12)
    assert found >= 3


def test_antiferromagnetic_bath_is_the_other_sublattice():
    """Bethe AFM: Delta_s = (D^2/4) G_{-s}, and the spins' baths are mirror images of each
    other at half filling (G_{-s}(i w) = -conj G_s(i w) for the Neel state)."""
    rng = np.random.default_rng(0)
    s = dict(CFG["sampler"], lattices=["bethe"], p_polarised=1.0)
    iw = matsubara_freqs(50.0, sb.N_IW)[sb.N_IW:]
    seen = 0
    for _ in range(40):
        delta, mus, info = sb._lattice_delta(rng, s, 2.0, 50.0, iw)
        if not info["afm"]:
            continue
        seen += 1
        assert np.all(delta.imag < 0)
        assert not np.allclose(delta[0], delta[1])
        assert mus[0] == mus[1]
    assert seen >= 5


@pytest.mark.parametrize("bad, match", [
    ({"beta_D": [0.0, 10.0]}, "beta_D"),
    ({"filling": [0.0, 1.0]}, "filling"),
    ({"lattices": ["kagome"]}, "lattices"),
    ({"p_discrete": 1.5}, "p_discrete"),
    ({"fit_tol": 0.0}, "fit_tol"),
    ({"n_bath_min": 7, "n_bath": 5}, "n_bath_min"),
    ({"beta_D_hot": -1.0}, "beta_D_hot"),
    ({"beta_D_hot": 16.0, "n_bath_hot": 2}, "n_bath_hot"),
    ({"n_bath_hot": 12}, "n_bath_hot"),
])
def test_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        validate_config({"sampler": {"mode": "single_band", **bad}})


# -- the "log" tau mesh of the recipe ----------------------------------------------------------
def test_log_tau_mesh():
    from triqs_mlsolver.database.generate import LOG_MESH_X_MIN, stored_tau_over_beta

    x = stored_tau_over_beta({"n_tau": 201, "tau_mesh": "log"})
    assert x.size == 201 and x[0] == 0.0 and x[-1] == 1.0 and x[100] == 0.5
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(x, 1.0 - x[::-1], rtol=0, atol=1e-15)
    assert x[1] == pytest.approx(LOG_MESH_X_MIN)
    assert CFG["grid"]["tau_mesh"] == "log"
    np.testing.assert_array_equal(stored_tau_over_beta({"n_tau": 5, "tau_mesh": "uniform"}),
                                  np.linspace(0, 1, 5))
    with pytest.raises(ConfigError, match="odd"):
        validate_config({"grid": {"tau_mesh": "log", "n_tau": 200}})


@pytest.mark.parametrize("n", [9, 200, 16385])
def test_uniform_tau_to_points_is_the_whole_grid_quintic_spline(n):
    """The windowed, cached weights give the values of the quintic spline of the whole
    grid (make_interp_spline, not-a-knot) to round-off, even on random data."""
    from scipy.interpolate import make_interp_spline
    from triqs_mlsolver.gf.transforms import log_tau_mesh, uniform_tau_to_points

    rng = np.random.default_rng(n)
    G = rng.normal(size=(2, 3, n))
    for x in (log_tau_mesh(201), rng.uniform(0, 1, 17), np.array([0.0, 1.0])):
        want = make_interp_spline(np.linspace(0, 1, n), G, k=5, axis=-1)(x)
        got = uniform_tau_to_points(G, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(G).max())


def test_stored_g_on_the_log_mesh_is_exact_at_low_temperature():
    """A beta D = 400 sample: the reference's G at the stored log points (a spline of the
    16385-point uniform G) against the Lehmann sum evaluated at those points."""
    from triqs_mlsolver.database.generate import solve_sample, stored_tau_over_beta
    from triqs_mlsolver.solvers.ed import ed_poles
    from triqs_mlsolver.solvers.solution import tau_of_poles

    cfg = {**CFG, "sampler": dict(CFG["sampler"], beta_D=[400.0, 400.0], U=[6.0, 6.0],
                                  p_discrete=1.0, p_polarised=0.0, n_bath=4, n_bath_min=4),
           "solvers": {"cheap": ["hubbard_i"], "reference": "ed"}}
    rec = solve_sample(cfg, 0)
    p = sb.sample(cfg, 0, np.random.default_rng([cfg["sampler"]["seed"], 0]))
    poles, _ = ed_poles(p, method="full")
    x = stored_tau_over_beta(cfg["grid"])
    exact = tau_of_poles(*poles[0], 400.0, 400.0 * x)
    got = rec["solvers"]["ed"]["G_tau"][0]
    assert rec["solvers"]["ed"]["ok"]
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-6)
    # what a uniform 201-point grid (spacing 2 at beta = 400) would have given there
    from scipy.interpolate import CubicSpline

    coarse = tau_of_poles(*poles[0], 400.0, np.linspace(0, 400.0, 201))
    assert np.abs(CubicSpline(np.linspace(0, 1, 201), coarse)(x) - exact).max() > 1e-2


def test_fitted_levels_stay_within_eps_max():
    """A fit whose levels run off (a tiny coupling at a huge level, seen at large U and low
    temperature) does not make a sample: sample 1847 of the recipe's seed had a level at
    8.8e4 D; now every level lies within EPS_MAX + U (a cut-off site has V = 0)."""
    cfg = CFG
    for i in (1847, 3985, 9492):
        p = sb.sample(cfg, i, np.random.default_rng([cfg["sampler"]["seed"], i]))
        assert np.abs(p.eps_k).max() <= sb.EPS_MAX + p.U
        far = np.abs(p.eps_k) == sb.EPS_MAX + p.U
        assert np.all(p.V_k[far] == 0.0)


# -- importance sampling by the cheap solvers' disagreement ([sampler] select) -----------------
def _small(**sampler):
    """The shipped recipe on a small grid (fast solves), with ``sampler`` changes."""
    raw = {"sampler": {"mode": "single_band", "seed": 11, "beta_D": [16.0, 100.0],
                       "n_bath": 5, **sampler},
           "solvers": {"cheap": ["ed3", "ed3e"], "reference": "ed"},
           "grid": {"n_iw": 256, "n_tau": 51, "tau_mesh": "log", "n_l": 20}}
    return validate_config(raw)


def test_selected_samples_disagree_by_at_least_select_min():
    from triqs_mlsolver.database.sampler import disagreement, sample_params

    plain = _small()
    d_plain = [disagreement(plain, sample_params(plain, i), "ed3", "ed3e") for i in range(12)]
    thr = float(np.quantile(d_plain, 0.75))  # roughly one candidate in four passes
    cfg = _small(select=["ed3", "ed3e"], select_min=thr, select_tries=60)
    for i in range(12):
        p = sample_params(cfg, i)
        assert disagreement(cfg, p, "ed3", "ed3e") >= thr
        if d_plain[i] >= thr:  # candidate 0 is the unselected sample: kept when it passes
            q = sample_params(plain, i)
            assert np.array_equal(p.eps_k, q.eps_k) and p.U == q.U and p.beta == q.beta
    again = sample_params(cfg, 5)  # deterministic in (seed, i)
    first = sample_params(cfg, 5)
    assert np.array_equal(again.eps_k, first.eps_k) and np.array_equal(again.mu, first.mu)


def test_selection_falls_back_to_the_most_disagreeing_candidate():
    from triqs_mlsolver.database import sampler

    cfg = _small(select=["ed3", "ed3e"], select_min=1e9, select_tries=3)
    cands = [sampler._candidate(cfg, 2, t) for t in range(3)]
    d = [sampler.disagreement(cfg, p, "ed3", "ed3e") for p in cands]
    p = sampler.sample_params(cfg, 2)
    best = cands[int(np.argmax(d))]
    assert np.array_equal(p.eps_k, best.eps_k) and p.U == best.U


def test_disagreement_is_the_weighted_rms_of_the_stored_g():
    from triqs_mlsolver.database.generate import solve_sample, stored_tau_over_beta
    from triqs_mlsolver.database.reader import tau_weights
    from triqs_mlsolver.database.sampler import disagreement, sample_params

    cfg = _small()
    rec = solve_sample(cfg, 3, solvers=["ed3", "ed3e"])
    g = {k: rec["solvers"][k]["G_tau"] for k in ("ed3", "ed3e")}
    w = tau_weights(stored_tau_over_beta(cfg["grid"]))
    want = np.sqrt(((g["ed3"] - g["ed3e"]) ** 2 * w).mean(axis=1)).max()
    got = disagreement(cfg, sample_params(cfg, 3), "ed3", "ed3e")
    assert want > 0 and got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("bad, match", [
    ({"select": ["ed3"]}, "select = \\['ed3'\\]: expected \\[\\] .* or two"),
    ({"select": ["ed3", "ed3"]}, "two different"),
    ({"select": ["ed3", "ed9x"]}, "select: unknown solver 'ed9x'"),
    ({"select_min": -1.0}, "select_min = -1.0: expected a number >= 0"),
    ({"select_tries": 0}, "select_tries = 0"),
])
def test_select_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        validate_config({"sampler": {"mode": "single_band", **bad}})


def test_select_refused_in_visited_mode(tmp_path):
    with pytest.raises(ConfigError, match="mode 'visited' solves the recorded AIMs as they are"):
        validate_config({"sampler": {"mode": "visited", "visited": str(tmp_path / "v.h5"),
                                     "select": ["ed3", "ed3e"]}})
