# SPDX-License-Identifier: Apache-2.0
"""``triqs-mlsolver run``: unmodified TRIQS scripts with the solver served by this package.

The light backend is forced (conftest.py), so the light TRIQS layer is served.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import run_in
from triqs_mlsolver.cli.run import IgnoredParameterWarning, NotServedError, ServedTriqs
from triqs_mlsolver.errors import UnknownParameterError

ROOT = Path(__file__).resolve().parents[2]
#: The project's Bethe-lattice DMFT script in TRIQS style (imports triqs_cthyb).
EXAMPLE = ROOT / "example" / "bethe_dmft_cthyb.py"
#: Its arguments in these tests: U, beta and iterations of test_example_matches_direct_ipt_dmft.
EXAMPLE_ARGS = ("--U", "2.5", "--beta", "100", "--loops", "5", "--out", "dmft.h5")
SERVED_TOPS = ("triqs", "h5", "pytriqs", "triqs_cthyb", "triqs_hubbardI")


def served_entries():
    """The sys.modules entries of the namespaces the hooks own."""
    return {k: v for k, v in sys.modules.items() if k.partition(".")[0] in SERVED_TOPS}


def write(folder, name, code):
    path = Path(folder) / name
    path.write_text(textwrap.dedent(code))
    return path



@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example run twice in-process with IPT; the second run is checked for leftovers."""
    folder = tmp_path_factory.mktemp("example")
    assert run_in(folder, "--solver", "ipt", EXAMPLE, *EXAMPLE_ARGS) == 0  # imports what it needs
    (folder / "dmft.h5").unlink()
    before = dict(sys.modules), list(sys.meta_path), list(sys.path), sys.argv
    rc = run_in(folder, "--solver", "ipt", EXAMPLE, *EXAMPLE_ARGS)
    after = dict(sys.modules), list(sys.meta_path), list(sys.path), sys.argv
    return {"rc": rc, "folder": folder, "before": before, "after": after}


def test_example_runs_and_writes_half_filled_solution(example):
    from triqs_mlsolver.gf import HDFArchive
    from triqs_mlsolver.solvers import IPTSolver

    assert example["rc"] == 0
    with HDFArchive(example["folder"] / "dmft.h5", "r") as ar:
        assert sorted(ar.keys()) == sorted(
            ["parameters", "iterations", "solver",
             *(f"{q}-{i}" for q in ("G_iw", "G_tau", "Sigma_iw") for i in range(5))])
        assert ar["parameters"] == {"U": 2.5, "beta": 100.0, "D": 1.0, "mu": 1.25}
        G = ar["G_iw-4"]
        G_tau = ar["G_tau-4"]["up"].data[:, 0, 0].real
        sigma = ar["Sigma_iw-4"]["up"].data[:, 0, 0]
        S = ar["solver"]
    assert type(S) is IPTSolver
    np.testing.assert_array_equal(S.G_iw["up"].data, G["up"].data)
    g = G["up"].data[:, 0, 0]
    n_iw = len(g) // 2
    np.testing.assert_array_equal(g, G["down"].data[:, 0, 0])  # paramagnetic loop
    # particle-hole symmetry at mu = U/2: G(i w) purely imaginary, Im G < 0 for w > 0
    assert np.abs(g.real).max() < 1e-10 and np.all(g[n_iw:].imag < 0)
    # G(0+) = G(beta-) = -n = -1/2, and the Hartree term U n = U/2 in Sigma
    np.testing.assert_allclose([G_tau[0], G_tau[-1]], [-0.5, -0.5], rtol=0, atol=1e-8)
    np.testing.assert_allclose(sigma[n_iw:].real, 1.25, rtol=0, atol=1e-8)


def test_example_matches_direct_ipt_dmft(example):
    """Same loop as bethe_dmft (U = 2.5, beta = 100, D = 1, no mixing, 5 iterations)."""
    from triqs_mlsolver.dmft import bethe_dmft
    from triqs_mlsolver.gf import HDFArchive

    with HDFArchive(example["folder"] / "dmft.h5", "r") as ar:
        g5 = ar["G_iw-4"]["up"].data[:, 0, 0]
    opts = dict(D=1.0, n_iw=1025, n_tau=10001, start="metal", mixing=1.0)
    replay = bethe_dmft("ipt", 2.5, 100.0, tol=0.0, max_iter=5, **opts)
    # only difference: the solver reads mu back from the tail of G0_iw (a fit)
    np.testing.assert_allclose(g5, replay.G_iw[0], rtol=0, atol=1e-8)
    conv = bethe_dmft("ipt", 2.5, 100.0, tol=1e-10, max_iter=300, **opts)
    assert conv.converged
    # the 5th iterate is within the sum of the later steps of the same iteration
    bound = sum(conv.history[5:]) + 1e-9
    dist = np.abs(g5 - conv.G_iw[0]).max()
    assert dist <= bound, (dist, bound)


def test_run_leaves_modules_and_hooks_as_they_were(example):
    mods_before, meta_before, path_before, argv_before = example["before"]
    mods_after, meta_after, path_after, argv_after = example["after"]
    assert example["rc"] == 0
    assert meta_after == meta_before and path_after == path_before
    assert argv_after is argv_before
    assert mods_after.keys() == mods_before.keys()
    assert all(mods_after[k] is mods_before[k] for k in mods_before)
    assert not {k for k in mods_after if k.partition(".")[0] in SERVED_TOPS}


def test_previous_modules_are_restored_exactly(tmp_path):
    import types

    sentinel = types.ModuleType("triqs_cthyb")
    sys.modules["triqs_cthyb"] = sentinel
    try:
        before = served_entries()
        script = write(tmp_path, "which.py", """\
            import json, sys
            import triqs_cthyb, triqs.gf, h5
            json.dump([triqs_cthyb.Solver.__name__, triqs.gf.__name__, sys.path[0]],
                      open("which.json", "w"))
            """)
        assert run_in(tmp_path, "--solver", "ipt", script) == 0
        assert served_entries() == before and sys.modules["triqs_cthyb"] is sentinel
    finally:
        del sys.modules["triqs_cthyb"]
    name, gf_name, path0 = json.loads((tmp_path / "which.json").read_text())
    assert name == "IPTSolverAsCthyb" and gf_name == "triqs.gf"
    assert path0 == os.path.realpath(tmp_path)


def test_script_args_reach_sys_argv(tmp_path):
    script = write(tmp_path, "args.py", """\
        import json, sys
        json.dump(sys.argv, open("argv.json", "w"))
        """)
    argv = ["--U", "2.5", "-h", "--solver", "x y"]
    assert run_in(tmp_path, "--solver", "ipt", script, *argv) == 0
    assert json.loads((tmp_path / "argv.json").read_text()) == [str(script), *argv]


@pytest.mark.parametrize("code, rc", [("sys.exit(3)", 3), ("sys.exit()", 0),
                                      ("sys.exit('bad input')", 1), ("pass", 0)])
def test_script_exit_code_propagates(tmp_path, capsys, code, rc):
    script = write(tmp_path, "exit.py", f"import sys\n{code}\n")
    assert run_in(tmp_path, "--solver", "ipt", script) == rc
    if rc == 1:
        assert "bad input" in capsys.readouterr().err


def test_script_exception_gives_traceback_and_status_1(tmp_path, capsys):
    script = write(tmp_path, "boom.py", "def f():\n    raise ValueError('boom 42')\nf()\n")
    assert run_in(tmp_path, "--solver", "ipt", script) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom.py" in err and "ValueError: boom 42" in err
    assert "runpy" not in err  # the traceback starts at the script


def test_missing_script_is_a_clear_error(tmp_path, capsys):
    assert run_in(tmp_path, "--solver", "ipt", tmp_path / "nope.py") == 2
    err = capsys.readouterr().err
    assert "nope.py" in err and "does not exist" in err and "give the path" in err


@pytest.mark.parametrize("statement, expected", [
    ("from triqs.stat import Histogram",
     ["triqs.stat is not provided by the light TRIQS layer", "TRIQS"]),
    ("import triqs_dft_tools", ["triqs_dft_tools is not installed", "install TRIQS"]),
    ("from triqs_cthyb.util import orbital_occupations",
     ["triqs_cthyb.util is not provided", "only Solver"]),
    ("from triqs_hubbardI import Solver", ["--serve-hubbardI"]),
])
def test_module_not_served_is_a_clear_error(tmp_path, capsys, statement, expected):
    script = write(tmp_path, "imports.py", statement + "\n")
    assert run_in(tmp_path, "--solver", "ipt", script) == 1
    err = capsys.readouterr().err
    assert "NotServedError" in err and all(e in err for e in expected), err
    assert not served_entries()


def test_unserved_module_error_is_an_import_error():
    with ServedTriqs("ipt"), pytest.raises(ImportError, match="triqs.stat"):
        import triqs.stat  # noqa: F401
    assert issubclass(NotServedError, ModuleNotFoundError)
    assert not served_entries()


def test_served_cthyb_solver_checks_keywords():
    with ServedTriqs("ipt"):
        from triqs.gf import SemiCircular, inverse, iOmega_n
        from triqs.operators import n
        from triqs_cthyb import Solver

        S = Solver(10.0, [("up", 1), ("down", 1)], 64, 257)  # cthyb's positional order
        assert S.n_l == 30 and S.average_sign == 1.0
        for _, g0 in S.G0_iw:
            g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))
        h_int = 2.0 * n("up", 0) * n("down", 0)
        with pytest.warns(IgnoredParameterWarning, match="n_cycles"):
            S.solve(h_int=h_int, n_cycles=100, measure_g_l=True, max_iter=50)
        assert S.ignored_parameters == ["measure_G_l", "n_cycles"]
        with pytest.raises(UnknownParameterError, match="n_cycle"):
            S.solve(h_int=h_int, n_cycle=100)
        with pytest.raises(ValueError, match="measure_G2_iw"):
            S.solve(h_int=h_int, measure_G2_iw=True)
        with pytest.raises(ValueError, match="calc_gw"):  # triqs_hubbardI's, not served here
            S.solve(h_int=h_int, calc_gw=True)
        with pytest.warns(IgnoredParameterWarning, match="use_norm_as_weight"):
            S.solve(h_int=h_int, measure_density_matrix=True, use_norm_as_weight=True)
        assert S.ignored_parameters == ["use_norm_as_weight"]
        assert S.solve_parameters["measure_density_matrix"] is True
        with pytest.raises(ValueError, match="delta_interface"):
            Solver(10.0, [("up", 1), ("down", 1)], delta_interface=True)
    assert not served_entries()


def test_served_cthyb_solver_round_trips_through_hdf5(tmp_path):
    from triqs_mlsolver.gf import HDFArchive
    from triqs_mlsolver.solvers import IPTSolver

    with ServedTriqs("ipt"):
        from triqs_cthyb import Solver

        S = Solver(beta=10.0, gf_struct=[("up", 1), ("down", 1)], n_iw=32, n_tau=129)
    with HDFArchive(tmp_path / "s.h5", "w") as ar:
        ar["S"] = S
    with HDFArchive(tmp_path / "s.h5", "r") as ar:
        back = ar["S"]
    assert type(back) is IPTSolver and back.n_l == 30


def test_serve_hubbardI_gives_triqs_hubbardI_results(tmp_path):
    """Atomic limit at half filling: G_iw = atomic G whatever the bath (as triqs_hubbardI)."""
    script = write(tmp_path, "hub.py", """\
        import numpy as np
        from triqs.gf import *
        from triqs.operators import *
        from triqs_hubbardI import Solver
        U, beta = 3.0, 20.0
        S = Solver(beta=beta, gf_struct=[('up', 1), ('down', 1)], n_iw=200, n_tau=401, n_w=11)
        for name, g0 in S.G0_iw:
            g0 << inverse(iOmega_n + U / 2 - 0.25 * SemiCircular(1.0))
        S.solve(h_int=U * n('up', 0) * n('down', 0), calc_gtau=True, calc_gl=True)
        np.save("hub.npy", np.stack([S.G_iw['up'].data[:, 0, 0], S.Sigma_iw['up'].data[:, 0, 0]]))
        """)
    assert run_in(tmp_path, "--solver", "ipt", "--serve-hubbardI", script, quiet=False) == 0
    G, sigma = np.load(tmp_path / "hub.npy")
    U, beta = 3.0, 20.0
    iw = 1j * (2 * np.arange(-200, 200) + 1) * np.pi / beta
    np.testing.assert_allclose(G, 0.5 / (iw - U / 2) + 0.5 / (iw + U / 2), rtol=0, atol=1e-10)
    np.testing.assert_allclose(sigma, U / 2 + U**2 / (4 * iw), rtol=0, atol=1e-10)


def test_model_option_needs_the_ml_solver(tmp_path, capsys):
    script = write(tmp_path, "empty.py", "")
    assert run_in(tmp_path, "--solver", "ipt", "--model", "x", script) == 2
    assert "--model" in capsys.readouterr().err


def test_console_script_help_and_exit_status(tmp_path):
    exe = Path(sys.executable).with_name("triqs-mlsolver")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "triqs_mlsolver.cli.main"]
    env = dict(os.environ, TRIQS_MLSOLVER_BACKEND="light")
    r = subprocess.run([*cmd, "run", "--help"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and "--solver" in r.stdout and "triqs_cthyb" in r.stdout
    script = write(tmp_path, "code.py", "import sys, triqs_cthyb\nsys.exit(int(sys.argv[1]))\n")
    r = subprocess.run([*cmd, "run", "--solver", "ipt", str(script), "5"], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 5, r.stderr


def test_example_with_default_ml_solver(tmp_path):
    from triqs_mlsolver.mlsolver import DEFAULT_MODEL, shipped_models

    assert DEFAULT_MODEL in shipped_models()
    assert run_in(tmp_path, EXAMPLE, *EXAMPLE_ARGS) == 0
    from triqs_mlsolver.gf import HDFArchive

    with HDFArchive(tmp_path / "dmft.h5", "r") as ar:
        g = ar["G_iw-4"]["up"].data[:, 0, 0]
    n_iw = len(g) // 2
    assert np.all(g[n_iw:].imag < 0) and np.abs(g.real).max() < 1e-2 * np.abs(g).max()


def test_modules_imported_from_the_script_folder_are_forgotten(tmp_path):
    """A helper module next to the script saw the served triqs; it does not outlive the run."""
    write(tmp_path, "dmft_helpers.py", "from triqs.gf import inverse\n")
    script = write(tmp_path, "main.py", "import dmft_helpers\n")
    assert run_in(tmp_path, "--solver", "ipt", script) == 0
    assert "dmft_helpers" not in sys.modules and not served_entries()


def test_real_triqs_is_not_shadowed():
    """With TRIQS in use (light=False) only triqs_cthyb is served; triqs stays the real one."""
    import types

    real = types.ModuleType("triqs")
    sys.modules["triqs"] = real
    try:
        with ServedTriqs("ipt", light=False) as hooks:
            import triqs
            from triqs_cthyb import Solver

            assert triqs is real and Solver.__name__ == "IPTSolverAsCthyb"
            assert hooks.served_tops == {"triqs_cthyb"}
        assert sys.modules["triqs"] is real and "triqs_cthyb" not in sys.modules
    finally:
        del sys.modules["triqs"]


# -- --n-bath (bath size of --solver ed) ------------------------------------------------------
N_BATH_SCRIPT = """\
    import json
    from triqs.gf import *
    from triqs.operators import *
    from triqs_cthyb import Solver
    S = Solver(beta=10.0, gf_struct=[('up', 1), ('down', 1)], n_iw=32, n_tau=129, n_l=10)
    for name, g0 in S.G0_iw:
        g0 << inverse(iOmega_n + 1.0 - 0.25 * SemiCircular(1.0))  # continuous hybridisation
    used = []
    for options in ({}, {'n_bath': 2}):
        S.solve(h_int=2.0 * n('up', 0) * n('down', 0), n_cycles=1000, **options)
        used.append(S.last_solve_parameters['n_bath'])
    json.dump(used, open('n_bath.json', 'w'))
    """


def test_n_bath_sets_the_bath_of_the_served_ed(tmp_path, capsys):
    """--n-bath 3 fits a continuous G0_iw with 3 sites; a script's own n_bath= wins."""
    script = write(tmp_path, "ed.py", N_BATH_SCRIPT)
    with pytest.warns(IgnoredParameterWarning, match="n_cycles"):
        assert run_in(tmp_path, "--solver", "ed", "--n-bath", "3", script, quiet=False) == 0
    assert json.loads((tmp_path / "n_bath.json").read_text()) == [3, 2]
    assert "--solver ed, n_bath=3" in capsys.readouterr().err


@pytest.mark.parametrize("argv, what, fix", [
    (["--solver", "ipt", "--n-bath", "3"], "--solver ipt has no bath sites",
     "drop --n-bath or use --solver ed"),
    (["--n-bath", "3"], "--solver ml has no bath sites", "drop --n-bath or use --solver ed"),
    (["--solver", "ed", "--n-bath", "0"], "--n-bath 0: the ED solver takes 1 to", "--n-bath 4"),
    (["--solver", "ed", "--n-bath", "99"], "--n-bath 99: the ED solver takes 1 to",
     "--n-bath 4"),
    (["--solver", "ed", "--n-bath", "four"], "--n-bath 'four' is not a number of bath sites",
     "--n-bath 4"),
])
def test_bad_n_bath_fails_before_the_script_starts(tmp_path, capsys, argv, what, fix):
    script = write(tmp_path, "touch.py", "open('started', 'w').close()\n")
    assert run_in(tmp_path, *argv, script) == 2
    err = capsys.readouterr().err
    assert what in err and fix in err, err
    assert not (tmp_path / "started").exists() and not served_entries()


def test_ed_without_n_bath_uses_the_ed_default():
    """No --n-bath: the ED solver's registered default (the 'auto' reference) applies."""
    from triqs_mlsolver.solvers import get_solver

    assert get_solver("ed").options["n_bath"] == "auto"
    served = ServedTriqs("ed").modules["triqs_cthyb"].Solver
    assert served.default_solve_options == {}
    assert ServedTriqs("ed", n_bath="auto").modules["triqs_cthyb"].Solver.default_solve_options \
        == {"n_bath": "auto"}
    assert ServedTriqs("ed", n_bath=5).modules["triqs_cthyb"].Solver.default_solve_options == {
        "n_bath": 5}
    assert ServedTriqs("ipt").modules["triqs_cthyb"].Solver.default_solve_options == {}


FALLBACK_SCRIPT = """
import json, sys
from triqs.gf import *
from triqs.operators import n
from triqs_cthyb import Solver
U = 12.0                                  # U/D = 12: outside the shipped models' domains
S = Solver(beta=50, gf_struct=[('up', 1), ('down', 1)], n_iw=64, n_tau=129)
for name, g0 in S.G0_iw:
    g0 << inverse(iOmega_n + U / 2 - 0.25 * SemiCircular(1.0))
S.solve(h_int=U * n('up', 0) * n('down', 0))
json.dump({"fallback": S.ml_report["fallback_used"],
           "n": [float(x) for x in S.density]}, open("out.json", "w"))
"""


def test_fallback_option_reaches_the_served_mlsolver(tmp_path, capsys):
    script = write(tmp_path, "u12.py", FALLBACK_SCRIPT)
    assert run_in(tmp_path, script) == 0  # MLSolver's default: the reference ED answers
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["fallback"] and out["n"] == pytest.approx([0.5, 0.5], abs=1e-6)
    assert run_in(tmp_path, "--fallback", "raise", script) == 1
    assert "OutOfDomainError" in capsys.readouterr().err
    assert run_in(tmp_path, "--fallback", "none", script) == 0
    assert not json.loads((tmp_path / "out.json").read_text())["fallback"]
    assert run_in(tmp_path, "--solver", "ipt", "--fallback", "ed", script) == 2
    assert "--fallback" in capsys.readouterr().err
