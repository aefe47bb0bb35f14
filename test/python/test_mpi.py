# SPDX-License-Identifier: Apache-2.0
"""Tests for triqs_mlsolver.mpi: single rank in-process, two ranks via mpiexec."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from triqs_mlsolver import mpi

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"


def _env(**extra):
    env = dict(os.environ)
    env.pop("TRIQS_MLSOLVER_NO_MPI", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PYTHON_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.update(extra)
    return env


def _find_mpiexec():
    found = shutil.which("mpiexec")
    if found:
        return found
    candidate = Path(sys.executable).parent / "mpiexec"
    return str(candidate) if candidate.exists() else None


# ---------------------------------------------------------------------------
# single rank, in-process
# ---------------------------------------------------------------------------


def test_single_rank_module_state():
    assert mpi.rank == 0 and mpi.size == 1 and mpi.master == 0
    assert mpi.is_master_node()
    assert mpi.HAS_MPI == (mpi.fallback_reason is None)
    assert mpi.HAS_MPI != isinstance(mpi.world, mpi.SerialCommunicator)


@pytest.mark.parametrize("comm", [None, mpi.SerialCommunicator()], ids=["world", "serial"])
def test_single_rank_collectives(comm):
    x = np.arange(4.0)
    assert mpi.bcast({"a": 1}, comm=comm) == {"a": 1}
    for reduced in (
        mpi.all_reduce(x, comm=comm),
        mpi.all_reduce(x, comm),
        mpi.all_reduce(mpi.world if comm is None else comm, x, lambda a, b: a + b),
    ):
        np.testing.assert_array_equal(reduced, x)
        assert reduced is not x and not np.shares_memory(reduced, x)
    assert mpi.all_reduce(3, comm=comm) == 3
    assert mpi.all_reduce(x=2.5, op=lambda a, b: a * b, comm=comm) == 2.5
    assert mpi.gather("g", comm=comm) == ["g"]
    assert mpi.allgather("g", comm=comm) == ["g"]
    mpi.barrier(comm=comm)
    mpi.barrier(0, comm=comm)


def test_report_prints_on_master_and_flushes(capsys):
    mpi.report("first", 2)
    mpi.report("to stderr", stderr=True)
    out, err = capsys.readouterr()
    assert out == "first\n2\n"
    assert err == "to stderr\n"


def test_bad_arguments():
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        mpi.bcast(1, comm="world")
    with pytest.raises(TypeError, match="missing required argument 'x'"):
        mpi.all_reduce()
    with pytest.raises(TypeError, match="unexpected keyword argument 'F'"):
        mpi.all_reduce(1, F=None)
    with pytest.raises(TypeError, match="needs x as second positional argument"):
        mpi.all_reduce(mpi.world)
    with pytest.raises(ValueError, match="root must be 0"):
        mpi.SerialCommunicator().bcast(1, root=1)


# ---------------------------------------------------------------------------
# communicator selection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_env_variable_forces_serial(value):
    comm, reason = mpi._select_world({"TRIQS_MLSOLVER_NO_MPI": value})
    assert isinstance(comm, mpi.SerialCommunicator)
    assert "TRIQS_MLSOLVER_NO_MPI" in reason


def test_env_variable_bad_value():
    with pytest.raises(ValueError, match="set it to 1 to run without MPI"):
        mpi._select_world({"TRIQS_MLSOLVER_NO_MPI": "maybe"})


def test_fallback_when_mpi4py_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    comm, reason = mpi._select_world({})
    assert isinstance(comm, mpi.SerialCommunicator)
    assert reason.startswith("mpi4py unavailable: ModuleNotFoundError")


def test_env_variable_at_import_in_fresh_interpreter():
    code = "from triqs_mlsolver import mpi; print(mpi.HAS_MPI, type(mpi.world).__name__)"
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(TRIQS_MLSOLVER_NO_MPI="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "SerialCommunicator"]


# ---------------------------------------------------------------------------
# distributing items
# ---------------------------------------------------------------------------


def test_slices_worked_example():
    # 10 items on 3 ranks: 10 = 3 * 3 + 1, so rank 0 gets 4 items.
    shares = [
        (mpi.slice_inf(0, 9, rank=r, size=3), mpi.slice_sup(0, 9, rank=r, size=3)) for r in range(3)
    ]
    assert shares == [(0, 3), (4, 6), (7, 9)]
    assert [mpi.slice_len(0, 9, rank=r, size=3) for r in range(3)] == [4, 3, 3]
    assert mpi.slice_array(np.arange(10), rank=2, size=3).tolist() == [7, 8, 9]


@pytest.mark.parametrize("n_ranks", [1, 2, 3, 5])
@pytest.mark.parametrize("n_items", [0, 1, 4, 11])
def test_slices_partition_the_range(n_ranks, n_items):
    imin = 3
    imax = imin + n_items - 1
    covered = []
    lengths = []
    for r in range(n_ranks):
        lo = mpi.slice_inf(imin, imax, rank=r, size=n_ranks)
        hi = mpi.slice_sup(imin, imax, rank=r, size=n_ranks)
        assert mpi.slice_len(imin, imax, rank=r, size=n_ranks) == hi - lo + 1
        covered.extend(range(lo, hi + 1))
        lengths.append(hi - lo + 1)
    assert covered == list(range(imin, imax + 1))
    assert max(lengths) - min(lengths) <= 1
    assert lengths == sorted(lengths, reverse=True)


def test_slices_default_to_this_rank_and_validate():
    assert (mpi.slice_inf(0, 9), mpi.slice_sup(0, 9)) == (0, 9)  # one rank: everything
    with pytest.raises(ValueError, match="need imax >= imin - 1"):
        mpi.slice_inf(5, 2)
    with pytest.raises(ValueError, match="need 0 <= rank < size"):
        mpi.slice_sup(0, 9, rank=3, size=3)
    with pytest.raises(TypeError, match="imax must be an int"):
        mpi.slice_len(0, 9.0)


# ---------------------------------------------------------------------------
# two ranks under mpiexec
# ---------------------------------------------------------------------------

TWO_RANK_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import numpy as np
    from triqs_mlsolver import mpi

    payload = {"v": [1, 2, 3]} if mpi.rank == 0 else None
    got = mpi.bcast(payload)
    arr = np.full(3, mpi.rank + 1.0)               # rank 0: 1s, rank 1: 2s
    summed = mpi.all_reduce(arr)
    old = mpi.all_reduce(mpi.world, np.arange(3) * (mpi.rank + 1), lambda a, b: a + b)
    prod = mpi.all_reduce(mpi.rank + 2, op=lambda a, b: a * b)
    cplx = mpi.all_reduce(np.array([1j * mpi.rank, 1.0]))
    share = mpi.slice_array(np.arange(5)).tolist()
    shares = mpi.allgather(share)
    mpi.barrier()
    with open(f"{sys.argv[1]}/rank{mpi.rank}.json", "w") as f:
        json.dump({
            "rank": mpi.rank, "size": mpi.size, "has_mpi": mpi.HAS_MPI,
            "master": mpi.is_master_node(), "bcast": got, "sum": summed.tolist(),
            "old": old.tolist(), "prod": prod, "cplx": [str(z) for z in cplx],
            "shares": shares, "gather": mpi.gather(mpi.rank * 10),
        }, f)
    mpi.report("REPORT from master")
    """
)


@pytest.mark.mpi
def test_two_ranks_under_mpiexec(tmp_path):
    mpiexec = _find_mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec on PATH or next to the Python executable")
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_RANK_SCRIPT)
    res = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, str(script), str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in results] == [0, 1], res.stdout + res.stderr
    assert res.stdout.count("REPORT from master") == 1
    for r in results:
        assert r["size"] == 2 and r["has_mpi"]
        assert r["master"] == (r["rank"] == 0)
        assert r["bcast"] == {"v": [1, 2, 3]}
        assert r["sum"] == [3.0, 3.0, 3.0]
        assert r["old"] == [0, 3, 6]
        assert r["prod"] == 2 * 3
        assert r["cplx"] == ["1j", "(2+0j)"]
        assert r["shares"] == [[0, 1, 2], [3, 4]]
    assert results[0]["gather"] == [0, 10]
    assert results[1]["gather"] is None
