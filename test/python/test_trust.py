# SPDX-License-Identifier: Apache-2.0
"""Never an answer the package cannot stand behind (issue 17): every output of MLSolver with
default options is physically valid, or comes from the reference ED, or is a named error.

The inputs are those a hostile tester gave the solver: temperatures and couplings far outside
the model's domain, a Zeeman field, non-causal or foreign ``G0``, bad option values, threads.
"""

import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

from triqs_mlsolver.errors import (  # noqa: E402
    InvalidG0Error,
    InvalidSolutionWarning,
    OutOfDomainError,
)
from triqs_mlsolver.gf import HDFArchive, SemiCircular, inverse, iOmega_n  # noqa: E402
from triqs_mlsolver.gf import transforms as tr  # noqa: E402
from triqs_mlsolver.ml.inference import OutOfDomainWarning  # noqa: E402
from triqs_mlsolver.mlsolver import DEFAULT_MODELS, MLSolver  # noqa: E402
from triqs_mlsolver.operators import n  # noqa: E402
from triqs_mlsolver.solvers import EDSolver  # noqa: E402
from triqs_mlsolver.solvers.solution import AIMSolution  # noqa: E402
from triqs_mlsolver.validity import check_solution  # noqa: E402

STRUCT = [("up", 1), ("down", 1)]


def fill(S, U, mu=None, h=0.0, D=1.0):
    """Bethe Weiss field of the U = 0 semicircle; ``h`` a Zeeman field (mu_up - mu_dn = 2h)."""
    mu = U / 2 if mu is None else mu
    G = S.G_iw.copy()
    G << SemiCircular(D)
    for name, g0 in S.G0_iw:
        sign = 1.0 if name == "up" else -1.0
        g0 << inverse(iOmega_n + mu + sign * h - D**2 / 4 * G[name])
    return S


def as_solution(S):
    """The arrays of a solved TRIQS-style solver, for :func:`check_solution`."""
    def arr(g):
        return np.stack([g[b].data[:, 0, 0] for b in ("up", "down")])
    return AIMSolution(beta=S.beta, G_iw=arr(S.G_iw), G_tau=arr(S.G_tau).real,
                       G_l=arr(S.G_l).real, Sigma_iw=arr(S.Sigma_iw),
                       density=np.asarray(S.density), double_occupancy=S.double_occupancy)


def solve_valid(S, U, **kw):
    """Solve with defaults and check every exact property of the outputs."""
    S.solve(h_int=U * n("up", 0) * n("down", 0), **kw)
    bad = check_solution(as_solution(S), U=U)
    assert bad == [], bad
    return S


# -- the cases of the issue ------------------------------------------------------------------
BETHE = "triqs_mlsolver_bethe_v5"  # the model of the old answers (not the default chain)


@pytest.mark.parametrize("beta, U, n_iw, by", [
    (0.01, 2.0, 64, "ed"),     # MLSolver returned <n_up n_dn> = -2836
    (1.0, 2.0, 128, DEFAULT_MODELS[2]),  # -23, G 70x worse than IPT (v4: beta D below v6's floor)
    (1000.0, 2.0, 1025, "ed"),  # Im Sigma(i w_n > 0) up to +89
    (50.0, 1e4, 256, "ed"),    # <n_up n_dn> = -5.9
])
def test_issue_inputs_give_valid_answers(beta, U, n_iw, by):
    """Valid answers with the defaults: from the reference ED outside every default model's
    domain, from the single-band model at beta D = 1 (inside its domain since session 11)."""
    S = fill(MLSolver(beta=beta, gf_struct=STRUCT, n_iw=n_iw, n_tau=2 * n_iw + 1, n_l=30), U)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # defaults: no warning
        solve_valid(S, U)
    rep = S.ml_report
    if by == "ed":
        assert rep["fallback_used"] and rep["out_of_domain"]
        assert rep["reference"]["n_bath"] >= 3 and rep["reference"]["error_estimate"] > 0
    else:
        assert rep["model"] == by and not rep["fallback_used"] and not rep["out_of_domain"]
    # half filling by particle-hole symmetry (exact for ED; the model to its accuracy)
    np.testing.assert_allclose(S.density, 0.5, atol=1e-6 if by == "ed" else 1e-3)


def test_the_old_answers_are_caught_by_the_validity_checks(monkeypatch):
    """fallback='none' keeps the model's answer: at beta = 1 it is the unphysical one the
    issue found, and the checks name what is wrong with it.  (The answer the issue found
    came from the self-energy tail fitted on the outer half of a mesh reaching 40 w_c:
    that fit is reproduced here; since session 9 the tail is fitted on a window above w_c
    there, and the answer is physical -- checked at the end.)"""
    import triqs_mlsolver.mlsolver as mls

    S = fill(MLSolver(beta=1.0, gf_struct=STRUCT, n_iw=128, n_tau=257, model=BETHE), 2.0)
    monkeypatch.setattr(mls, "SIGMA_FIT_SWITCH", np.inf)
    with pytest.warns(OutOfDomainWarning), pytest.warns(InvalidSolutionWarning,
                                                        match="double occupancy"):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0), fallback="none")
    assert not S.ml_report["fallback_used"]
    assert any("double occupancy" in v for v in S.ml_report["invalid"])
    # its causal projection is valid but far from it (G(tau) moved by 0.25): not used
    assert S.ml_report["projection"]["accepted"] is False
    assert "more than the spread limit" in S.ml_report["projection"]["reason"]
    monkeypatch.undo()
    with pytest.warns(OutOfDomainWarning):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0), fallback="none")
    assert not S.ml_report["invalid"]
    with pytest.raises(OutOfDomainError, match="log\\(beta\\*D\\)"):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0), fallback="raise")


def test_zeeman_field_matches_ed_per_spin():
    """cthyb's doc/guide/static.py case: a field splits the levels; the default chain's
    spin-resolved single-band model answers, per spin (n within 0.01 of ED)."""
    beta, U, h = 50.0, 2.0, 0.3
    S = fill(MLSolver(beta=beta, gf_struct=STRUCT, n_iw=512, n_tau=1025), U, h=h)
    solve_valid(S, U)
    ref = fill(EDSolver(beta=beta, gf_struct=STRUCT, n_iw=512, n_tau=1025), U, h=h)
    ref.solve(h_int=U * n("up", 0) * n("down", 0))
    assert S.density[0] > S.density[1] + 0.2  # the field polarises
    np.testing.assert_allclose(S.density, ref.density, atol=0.01)
    assert S.ml_report["model"] == DEFAULT_MODELS[1]
    assert not S.ml_report["fallback_used"]


def test_zeeman_field_without_fallback_is_consistent_per_spin():
    """fallback='none' with the spin-symmetric Bethe model: it corrects each spin's own cheap
    solution, and G_tau, G_l of each block are the transforms of that block's G_iw (they
    were copies of spin up)."""
    beta, U, h = 50.0, 2.0, 0.05
    S = fill(MLSolver(beta=beta, gf_struct=STRUCT, n_iw=1025, n_tau=2049, n_l=40,
                      model=BETHE), U, h=h)
    with pytest.warns(OutOfDomainWarning, match="spin-polarised"):
        S.solve(h_int=U * n("up", 0) * n("down", 0), fallback="none")
    sol = as_solution(S)
    assert not np.allclose(sol.G_tau[0], sol.G_tau[1], atol=1e-3)
    iw = tr.matsubara_freqs(beta, 1025)
    for s in range(2):
        mom, _ = tr.fit_tail(sol.G_iw[s], iw, known_moments=np.array([0.0, 1.0]), max_order=6)
        np.testing.assert_allclose(tr.iw_to_tau(sol.G_iw[s], beta, 2049, mom[:4]).real,
                                   sol.G_tau[s], rtol=0, atol=1e-6)
    assert S.density[0] > S.density[1]


def test_absurd_inputs_never_reach_the_cheap_solvers():
    """U = 1e6 made IPT raise a RuntimeError even with fallback='ed'; beta = 1e-8 failed with a
    message that did not name it.  The domain check runs first: the reference answers."""
    for beta, U in ((50.0, 1e6), (1e-8, 2.0)):
        S = fill(MLSolver(beta=beta, gf_struct=STRUCT, n_iw=64, n_tau=129), U)
        solve_valid(S, U)
        assert S.ml_report["fallback_used"]
        assert "ipt" not in S.ml_report["timings"]


# -- messages that name the input and the fix -------------------------------------------------
def test_bad_options_are_named():
    S = fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=257), 2.0)
    h = 2.0 * n("up", 0) * n("down", 0)
    with pytest.raises(TypeError, match="spread_tol='abc'"):
        S.solve(h_int=h, spread_tol="abc")
    with pytest.raises(ValueError, match="spread_tol=nan"):
        S.solve(h_int=h, spread_tol=float("nan"))
    with pytest.raises(ValueError, match="spread_tol=-1"):
        S.solve(h_int=h, spread_tol=-1)
    with pytest.raises(ValueError, match="fallback='cthyb'"):
        S.solve(h_int=h, fallback="cthyb")
    with pytest.raises(ValueError, match="n_tau=2"):
        MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=2)
    with pytest.raises(ValueError, match="beta=-1"):
        MLSolver(beta=-1.0, gf_struct=STRUCT, n_iw=128, n_tau=257)


@pytest.mark.parametrize("mangle, match", [
    (lambda g: g.conjugate(), "conjugated or negated"),
    (lambda g: -g, "conjugated or negated"),
])
def test_non_causal_g0_is_named(mangle, match):
    S = fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=257), 2.0)
    for _, g0 in S.G0_iw:
        g0.data[:] = mangle(g0.data)
    with pytest.raises(InvalidG0Error, match=match):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0))


def test_negative_weight_bath_is_named():
    """Delta = -G_sc/4: a bath of negative spectral weight (was 'Delta vanishes')."""
    S = MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=257)
    G = S.G_iw.copy()
    G << SemiCircular(1.0)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0 + 0.25 * G[name])
    with pytest.raises(InvalidG0Error, match="negative spectral weight"):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0))


def test_g0_from_another_beta_is_named():
    S = MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=257)
    other = fill(MLSolver(beta=40.0, gf_struct=STRUCT, n_iw=128, n_tau=257), 2.0)
    for name, g0 in S.G0_iw:
        g0.data[:] = other.G0_iw[name].data
    with pytest.raises(InvalidG0Error, match="beta = 40"):
        S.solve(h_int=2.0 * n("up", 0) * n("down", 0))


# -- threads, storage -------------------------------------------------------------------------
def test_threads_share_nothing_wrong():
    """Several threads, each with its own solver, and two threads on one solver: every
    result equals the serial one and torch's thread count is left as it was."""
    import torch

    before = torch.get_num_threads()
    Us = (1.0, 2.0, 3.0, 1.5)
    serial = {}
    for U in Us:
        S = fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=256, n_tau=513), U)
        S.solve(h_int=U * n("up", 0) * n("down", 0))
        serial[U] = S.G_iw["up"].data.copy()
    results, errors = {}, []

    def work(U, S=None):
        try:
            S = S or fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=256, n_tau=513), U)
            for _ in range(3):
                S.solve(h_int=U * n("up", 0) * n("down", 0))
                results.setdefault(U, []).append(S.solution.G_iw[0].copy())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(U,)) for U in Us]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for U in Us:
        for g in results[U]:
            np.testing.assert_allclose(g, serial[U][:, 0, 0], rtol=0, atol=1e-12)
    assert torch.get_num_threads() == before
    # one object, two threads with the same input: solves run one after the other
    shared = fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=256, n_tau=513), 2.0)
    results.clear()
    threads = [threading.Thread(target=work, args=(2.0, shared)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    np.testing.assert_allclose(shared.G_iw["up"].data, serial[2.0], rtol=0, atol=1e-12)
    assert torch.get_num_threads() == before


def test_stored_solver_reads_back_without_its_model(tmp_path):
    import shutil

    from triqs_mlsolver.ml.modelfile import model_path
    from triqs_mlsolver.mlsolver import DEFAULT_MODEL

    private = tmp_path / "my_model.safetensors"
    shutil.copy(model_path(DEFAULT_MODEL), private)
    S = fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=257, model=str(private)), 2.0)
    S.solve(h_int=2.0 * n("up", 0) * n("down", 0))
    with HDFArchive(tmp_path / "s.h5", "w") as ar:
        ar["S"] = S
    private.unlink()
    with HDFArchive(tmp_path / "s.h5", "r") as ar:
        S2 = ar["S"]
    np.testing.assert_array_equal(S2.G_iw["up"].data, S.G_iw["up"].data)
    with pytest.raises(FileNotFoundError, match="my_model"):
        S2.solve(h_int=2.0 * n("up", 0) * n("down", 0))


# -- the validity checks themselves -----------------------------------------------------------
def _ed_solution(beta=20.0, U=2.0, h=0.0):
    S = fill(EDSolver(beta=beta, gf_struct=STRUCT, n_iw=256, n_tau=1025, n_l=40), U, h=h)
    S.solve(h_int=U * n("up", 0) * n("down", 0), n_bath=4)
    return S.solution


def test_checks_pass_exact_solutions_and_name_each_violation():
    sol = _ed_solution(h=0.1)
    assert check_solution(sol, U=2.0) == []
    cases = {
        "G_tau\\[down\\] > 0": lambda s: s.G_tau.__setitem__((1, 300), 1e-3),
        "not -1": lambda s: s.G_tau.__setitem__((0, 0), s.G_tau[0, 0] - 1e-3),
        "Im Sigma_iw\\[up\\]": lambda s: s.Sigma_iw.__setitem__((0, 260),
                                                         s.Sigma_iw[0, 260].real + 0.01j),
        "Im G_iw\\[up\\]": lambda s: s.G_iw.__setitem__((0, 256), s.G_iw[0, 256].conj()),
        "double occupancy": lambda s: setattr(s, "double_occupancy", -0.01),
        "non-finite": lambda s: s.G_l.__setitem__((0, 3), np.nan),
        "G_tau\\[down\\] is not the transform": lambda s: s.G_tau.__setitem__(1, s.G_tau[0]),
        "G_l\\[up\\] is not the transform": lambda s: s.G_l.__setitem__(0, s.G_l[1]),
        "Hartree": lambda s: s.Sigma_iw.__setitem__(0, s.Sigma_iw[0] + 0.05),
    }
    for what, spoil in cases.items():
        bad = _ed_solution(h=0.1)
        spoil(bad)
        found = check_solution(bad, U=2.0)
        assert any(__import__("re").search(what, v) for v in found), (what, found)


# -- the random grid of the acceptance -------------------------------------------------------
def _random_inputs(n_inputs, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_inputs):
        beta = float(10 ** rng.uniform(-2, 4))
        U = float(rng.choice([0.0, 10 ** rng.uniform(-1, 4)]))
        filling_shift = float(rng.uniform(-1, 1))  # mu - U/2 in units of max(U, D)
        mu = U / 2 + filling_shift * max(U, 1.0)
        h = float(rng.choice([0.0, 0.0, rng.uniform(-0.5, 0.5)]))
        yield beta, U, mu, h


def _grid(n_inputs, seed):
    failures = []
    for beta, U, mu, h in _random_inputs(n_inputs, seed):
        n_iw = int(np.clip(50 * beta, 32, 1025))
        S = fill(MLSolver(beta=beta, gf_struct=STRUCT, n_iw=n_iw, n_tau=2 * n_iw + 1), U,
                 mu=mu, h=h)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            S.solve(h_int=U * n("up", 0) * n("down", 0))
        bad = check_solution(as_solution(S), U=U)
        if bad:
            failures.append(((beta, U, mu, h), bad))
    assert failures == []


def test_random_inputs_give_valid_answers():
    """A sample of the acceptance grid in the default suite (the whole grid is slow)."""
    _grid(12, seed=17)


@pytest.mark.slow
def test_random_grid_of_200_inputs():
    """beta 0.01 - 1e4, U 0 - 1e4, any filling, a third polarised: never an invalid answer."""
    _grid(200, seed=2026)


REAL_TRIQS_STORE = """\
import shutil, sys, warnings
import numpy as np
from h5 import HDFArchive
from triqs.gf import SemiCircular, inverse, iOmega_n, BlockGf
from triqs.operators import n
from triqs_mlsolver import Solver
from triqs_mlsolver.ml.modelfile import model_path
from triqs_mlsolver.mlsolver import DEFAULT_MODEL
shutil.copy(model_path(DEFAULT_MODEL), "private.safetensors")
S = Solver(beta=50.0, gf_struct=[('up', 1), ('down', 1)], n_iw=128, n_tau=257,
           model="private.safetensors")
assert isinstance(S.G0_iw, BlockGf)  # real TRIQS objects
for _, g0 in S.G0_iw:
    g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))
S.solve(h_int=2.0 * n('up', 0) * n('down', 0))
with HDFArchive('s.h5', 'w') as ar:
    ar['solver'] = S
import os
os.remove("private.safetensors")
with HDFArchive('s.h5', 'r') as ar:
    back = ar['solver']
assert type(back).__name__ == 'MLSolver', type(back)
assert np.array_equal(back.G_iw['up'].data, S.G_iw['up'].data)
assert np.array_equal(back.G_tau['down'].data, S.G_tau['down'].data)
# the same keys and kinds as real triqs_cthyb's dump (ours may add keys)
import importlib.util, h5py
def layout(path):
    with h5py.File(path, 'r') as f:
        g = f['solver']
        return {k: ('group' if isinstance(g[k], h5py.Group) else g[k].dtype.kind) for k in g}
if importlib.util.find_spec('triqs_cthyb') is not None:
    import triqs_cthyb
    C = triqs_cthyb.Solver(beta=50.0, gf_struct=[('up', 1), ('down', 1)], n_iw=128, n_tau=257)
    for _, g0 in C.G0_iw:
        g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))
    C.solve(h_int=2.0 * n('up', 0) * n('down', 0), n_cycles=500, n_warmup_cycles=100,
            measure_density_matrix=True, use_norm_as_weight=True)
    with HDFArchive('cthyb.h5', 'w') as ar:
        ar['solver'] = C
    ours, theirs = layout('s.h5'), layout('cthyb.h5')
    for key, kind in theirs.items():
        assert ours.get(key) == kind, (key, ours.get(key), kind)
print("ok")
"""


@pytest.mark.triqs
@pytest.mark.skipif(__import__("importlib").util.find_spec("h5") is None,
                    reason="real TRIQS (h5) not importable")
def test_real_triqs_stores_and_reads_back_mlsolver(tmp_path):  # pragma: no cover - TRIQS
    """With real TRIQS, ``ar['solver'] = S`` raised 'format "MLSolver" not registered' and
    left a half-written group; now it round-trips, even with the model file gone."""
    import os
    import subprocess
    import sys

    (tmp_path / "store.py").write_text(REAL_TRIQS_STORE)
    env = dict(os.environ, TRIQS_MLSOLVER_BACKEND="auto")
    r = subprocess.run([sys.executable, "store.py"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]
