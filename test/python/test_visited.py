# SPDX-License-Identifier: Apache-2.0
"""Recording the AIMs a solver was asked to solve (the dynamic database's input)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

from triqs_mlsolver.aim import AIMParams  # noqa: E402
from triqs_mlsolver.database.visited import read_visits, record_visit  # noqa: E402
from triqs_mlsolver.errors import OutOfDomainError  # noqa: E402
from triqs_mlsolver.gf import SemiCircular, inverse, iOmega_n  # noqa: E402
from triqs_mlsolver.mlsolver import MLSolver, solve_ml  # noqa: E402
from triqs_mlsolver.operators import n  # noqa: E402
from triqs_mlsolver.solvers.base import params_from_g0  # noqa: E402

STRUCT = [("up", 1), ("down", 1)]


def fill(S, U, D=1.0):
    for _, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + U / 2 - D**2 / 4 * SemiCircular(D))
    return S


def test_mlsolver_records_every_solve_with_its_verdict(tmp_path):
    path = tmp_path / "visited.h5"
    S = fill(MLSolver(beta=50.0, gf_struct=STRUCT, n_iw=128, n_tau=257, record=path), 2.0)
    S.solve(h_int=2.0 * n("up", 0) * n("down", 0))          # in the domain
    fill(S, 12.0).solve(h_int=12.0 * n("up", 0) * n("down", 0))  # U/D = 12: the reference
    with pytest.raises(OutOfDomainError):
        S.solve(h_int=12.0 * n("up", 0) * n("down", 0), fallback="raise")
    visits = read_visits(path)
    assert [v.out_of_domain for v in visits] == [False, True, True]
    assert [v.attrs["fallback_used"] for v in visits] == [False, True, False]
    assert "U/D" in visits[1].attrs["reasons"] and visits[0].attrs["reasons"] == ""
    assert [v.params.U for v in visits] == [2.0, 12.0, 12.0]
    # the recorded AIM is the one solved: Delta and mu as read from G0_iw
    g0 = np.stack([S.G0_iw[b].data[:, 0, 0] for b in ("up", "down")])
    p = params_from_g0(g0, 50.0, 12.0, np.zeros(2))
    np.testing.assert_array_equal(visits[2].params.Delta_iw, p.Delta_iw)
    np.testing.assert_array_equal(visits[2].params.mu, p.mu)
    assert visits[2].params.beta == 50.0 and np.isfinite(visits[0].attrs["spread_max"])


def test_discrete_baths_are_recorded_as_such(tmp_path):
    p = AIMParams(U=2.0, mu=1.0, beta=20.0, eps_k=np.array([[-0.5, 0.5], [-0.5, 0.5]]),
                  V_k=np.array([[0.4, 0.4], [0.4, 0.4]]))
    solve_ml(p, n_iw=128, n_tau=257, n_l=30, record=tmp_path / "v.h5")
    (v,) = read_visits(tmp_path / "v.h5")
    np.testing.assert_array_equal(v.params.eps_k, p.eps_k)
    np.testing.assert_array_equal(v.params.V_k, p.V_k)
    assert v.params.Delta_iw is None


def test_recording_refuses_a_foreign_file(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    p = AIMParams(U=1.0, mu=0.5, beta=10.0, eps_k=np.zeros((2, 1)), V_k=np.full((2, 1), 0.5))
    with pytest.raises(ValueError, match="not a file of visited AIMs"):
        record_visit(tmp_path / "other.h5", p, {})
    with pytest.raises(TypeError, match="record="):
        MLSolver(beta=10.0, gf_struct=STRUCT, n_iw=64, n_tau=129, record=3)


def test_dmft_records_every_iteration(tmp_path):
    from triqs_mlsolver.dmft import run_dmft

    path = tmp_path / "dmft_visits.h5"
    run = run_dmft("ml", 2.0, 50.0, n_iw=128, n_tau=257, tol=1e-4, max_iter=6,
                   solver_options={"record": str(path)})
    visits = read_visits(path)
    assert len(visits) == run.iterations
    assert all(v.params.U == 2.0 and v.params.beta == 50.0 for v in visits)


def test_processes_append_without_losing_a_record(tmp_path):
    """Two processes appending at once (as under mpirun): every record is there."""
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from triqs_mlsolver.aim import AIMParams
        from triqs_mlsolver.database.visited import record_visit
        tag = float(sys.argv[1])
        for i in range(8):
            p = AIMParams(U=tag + i, mu=0.5, beta=10.0, eps_k=np.zeros((2, 1)),
                          V_k=np.full((2, 1), 0.5))
            record_visit({str(tmp_path / "shared.h5")!r}, p, {{}})
        """)
    procs = [subprocess.Popen([sys.executable, "-c", code, tag]) for tag in ("100", "200")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    Us = sorted(v.params.U for v in read_visits(tmp_path / "shared.h5"))
    assert Us == sorted([100.0 + i for i in range(8)] + [200.0 + i for i in range(8)])


def _record_some(path):
    """A few recorded visits on the Bethe lattice at U = 2: in the domain (beta = 20), out of
    every default model's (beta D = 0.5; the single-band model starts at 1), and one
    spin-polarised AIM (a field, beta = 20)."""
    from triqs_mlsolver.dmft import run_dmft

    for beta in (20.0, 0.5):
        run_dmft("ml", 2.0, beta, n_iw=256, n_tau=513, tol=1e-4, max_iter=4,
                 solver_options={"record": str(path)})
    S = MLSolver(beta=20.0, gf_struct=STRUCT, n_iw=256, n_tau=513, record=path)
    for name, g0 in S.G0_iw:
        h = 0.2 if name == "up" else -0.2
        g0 << inverse(iOmega_n + 1.0 + h - 0.25 * SemiCircular(1.0))
    S.solve(h_int=2.0 * n("up", 0) * n("down", 0))
    return read_visits(path)


def test_generate_from_visited_solves_them_with_the_reference(tmp_path):
    """`generate --from`: one sample per visit, its own beta, U, mu, the hybridisation
    fitted by n_bath sites; a polarised visit is a sample too, fitted per spin (format 4)."""
    from triqs_mlsolver.cli.main import main
    from triqs_mlsolver.database import Database

    visits = _record_some(tmp_path / "visited.h5")
    sym = [v for v in visits if v.params.spin_symmetric]
    assert len(sym) == len(visits) - 1  # the last one is polarised
    cfg = tmp_path / "db.toml"
    cfg.write_text('[sampler]\nn_bath = 4\n[solvers]\ncheap = ["hubbard_i", "ipt"]\n'
                   'reference = "ed"\n[grid]\nn_iw = 256\nn_tau = 51\nn_l = 20\n')
    out = tmp_path / "vdb.h5"
    assert main(["-q", "generate", str(cfg), "--from", str(tmp_path / "visited.h5"),
                 "-o", str(out)]) == 0
    db = Database(out)
    assert len(db) == len(visits) and db.check()
    np.testing.assert_array_equal(db.polarised, [not v.params.spin_symmetric for v in visits])
    np.testing.assert_array_equal(db.params["U"], [v.params.U for v in visits])
    np.testing.assert_array_equal(db.params["beta"], [v.params.beta for v in visits])
    np.testing.assert_allclose(db.params["mu_s"], [v.params.mu for v in visits], rtol=0,
                               atol=0)
    # D = 2 sqrt(m_0) of the recorded Delta: the Bethe Weiss fields have m_0 = t^2 = 1/4
    np.testing.assert_allclose(db.params["D"], 1.0, rtol=1e-3)
    # the sample's 4-site bath represents the visit's Delta (a smooth continuum: a 4-site
    # fit is good to a few per cent of max |Delta| on the Matsubara mesh)
    from triqs_mlsolver.gf.transforms import matsubara_freqs

    for k, v in enumerate(visits):
        iw = matsubara_freqs(v.params.beta, 256)
        for s in range(2):
            e, V = db.params["eps_k_s"][k, s], db.params["V_k_s"][k, s]
            fit = (V[:, None] ** 2 / (iw[None, :] - e[:, None])).sum(axis=0)
            rec = v.params.Delta_iw[s]
            assert np.abs(fit - rec).max() < 0.05 * np.abs(rec).max(), (k, s)
    # only the visits the model was not trusted for
    cfg.write_text(cfg.read_text().replace("n_bath = 4", 'n_bath = 4\nvisited_only = '
                                           '"out_of_domain"'))
    out2 = tmp_path / "vdb_ood.h5"
    assert main(["-q", "generate", str(cfg), "--from", str(tmp_path / "visited.h5"),
                 "-o", str(out2)]) == 0
    ood = [v for v in visits if v.out_of_domain]
    assert 0 < len(ood) < len(visits)
    np.testing.assert_array_equal(Database(out2).params["U"], [v.params.U for v in ood])


def test_visited_fits_keep_their_levels_in_range():
    """generate --from: a fit whose levels leave +-eps_max is replaced by one with fewer
    sites (a Mott insulator's Delta fitted by 8 sites had sites at 1e7 D); with no such fit
    the far site is cut off (V = 0)."""
    from triqs_mlsolver.database.sampler import _fit_in_range
    from triqs_mlsolver.gf.transforms import matsubara_freqs, semicircle_g

    iw = matsubara_freqs(50.0, 256)
    delta = 0.25 * semicircle_g(iw, 1.0)
    free = _fit_in_range(delta, 50.0, 6, 0, 1.0, np.inf)
    assert free.eps_k.size == 6 and np.abs(free.eps_k).max() > 0.6
    tight = _fit_in_range(delta, 50.0, 6, 0, 1.0, 0.6)
    assert np.abs(tight.eps_k).max() <= 0.6
    assert tight.eps_k.size < 6 or np.all(tight.V_k[np.abs(tight.eps_k) == 0.6] == 0)
