# SPDX-License-Identifier: Apache-2.0
"""Tests for triqs_mlsolver.operators.

The algebra is checked against an independent route: a Jordan-Wigner
construction of the fermion operators as explicit matrices in Fock space,
written here with numpy only.  ``op_matrix`` turns an ``Operator`` into a
matrix by multiplying those matrices along each monomial, so it does not use
the package's normal-ordering code.
"""

import itertools

import numpy as np
import pytest
from triqs_mlsolver.operators import (
    Operator,
    U_matrix_kanamori,
    c,
    c_dag,
    dagger,
    density_density_matrix,
    diagonal_part,
    fundamental_operators,
    h_int_density,
    h_int_kanamori,
    is_density_density,
    monomials,
    n,
)

SPINS = ["up", "down"]
# mode order used for all Fock-space matrices: (up,0), (down,0), (up,1), (down,1)
MODES = [(s, a) for a in range(2) for s in SPINS]


# ---------------------------------------------------------------------------
# Jordan-Wigner reference
# ---------------------------------------------------------------------------


def jw_annihilators(n_modes):
    """Matrices of c_k on 2**n_modes states; bit k of the basis label is n_k."""
    dim = 2**n_modes
    ops = []
    for k in range(n_modes):
        m = np.zeros((dim, dim))
        for state in range(dim):
            if state >> k & 1:
                sign = (-1) ** bin(state & ((1 << k) - 1)).count("1")
                m[state ^ (1 << k), state] = sign
        ops.append(m)
    return ops


C_MAT = dict(zip(MODES, jw_annihilators(len(MODES)), strict=True))
N_PARTICLES = np.array([bin(s).count("1") for s in range(2 ** len(MODES))])


def op_matrix(op, modes=MODES):
    """Fock-space matrix of an Operator, built from its TRIQS-style iteration."""
    cm = dict(zip(modes, jw_annihilators(len(modes)), strict=True))
    dim = 2 ** len(modes)
    total = np.zeros((dim, dim), dtype=complex)
    for monomial, coef in op:
        m = np.eye(dim)
        for is_dag, (block, index) in monomial:
            m = m @ (cm[(block, index)].T if is_dag else cm[(block, index)])
        total += coef * m
    return total


def sector_eigenvalues(H, n_particles):
    idx = np.flatnonzero(N_PARTICLES == n_particles)
    return np.linalg.eigvalsh(H[np.ix_(idx, idx)])


# ---------------------------------------------------------------------------
# algebra
# ---------------------------------------------------------------------------

ALL_OPS = [("up", 0), ("down", 0), ("up", 1), ("up", "x")]


@pytest.mark.parametrize("i, j", list(itertools.product(ALL_OPS, ALL_OPS)))
def test_canonical_anticommutation_relations(i, j):
    delta = 1 if i == j else 0
    assert c(*i) * c_dag(*j) + c_dag(*j) * c(*i) == delta
    assert (c(*i) * c(*j) + c(*j) * c(*i)).is_zero()
    assert (c_dag(*i) * c_dag(*j) + c_dag(*j) * c_dag(*i)).is_zero()


def test_pauli_principle_and_idempotent_density():
    assert (c("up", 0) * c("up", 0)).is_zero()
    assert (c_dag("up", 0) * c_dag("up", 0)).is_zero()
    assert n("up", 0) * n("up", 0) == n("up", 0)
    assert n("up", 0) * n("up", 0) != 2 * n("up", 0)
    assert c("up", 0) * c_dag("up", 0) == 1 - n("up", 0)


def test_reordering_signs():
    a, b = c_dag("up", 0), c_dag("down", 1)
    assert a * b == -(b * a)
    assert a * b != b * a
    # n_i n_j commute and are stored with sign +1 as c+_i c+_j c_j c_i
    assert n("up", 0) * n("down", 0) == n("down", 0) * n("up", 0)
    assert monomials(n("up", 0) * n("up", 1)) == [
        (((True, "up", 0), (True, "up", 1), (False, "up", 1), (False, "up", 0)), 1)
    ]
    # int indices sort before str indices, as in TRIQS
    assert monomials(c_dag("a", "x") * c_dag("a", 1)) == [(((True, "a", 1), (True, "a", "x")), -1)]


def test_spin_flip_term_normal_order():
    # c+_{0u} c_{0d} c+_{1d} c_{1u}: moving c_{0d} right past c+_{1d} (no
    # contraction) and c_{1u} gives -c+_{0u} c+_{1d} c_{1u} c_{0d}; canonical
    # creator order puts ('down',1) before ('up',0): one more swap -> +1.
    op = c_dag("up", 0) * c("down", 0) * c_dag("down", 1) * c("up", 1)
    assert monomials(op) == [
        (((True, "down", 1), (True, "up", 0), (False, "up", 1), (False, "down", 0)), -1)
    ]
    # contraction of the same orbital: c+_{0u} c_{0d} c+_{0d} c_{0u} = n_0u - n_0u n_0d
    op = c_dag("up", 0) * c("down", 0) * c_dag("down", 0) * c("up", 0)
    assert op == n("up", 0) - n("up", 0) * n("down", 0)


def test_dagger():
    assert dagger(c_dag("up", 0) * c("down", 1)) == c_dag("down", 1) * c("up", 0)
    assert dagger(2j * c("up", 0)) == -2j * c_dag("up", 0)
    assert dagger(n("up", 0)) == n("up", 0)
    pair = c_dag("up", 0) * c_dag("down", 0)
    assert dagger(pair) == c("down", 0) * c("up", 0)
    assert dagger(pair) != c("up", 0) * c("down", 0)


def test_random_products_match_jordan_wigner():
    rng = np.random.default_rng(1234)
    elementary = [(d, m) for d in (True, False) for m in MODES]
    for _ in range(150):
        length = rng.integers(1, 6)
        picks = [elementary[k] for k in rng.integers(len(elementary), size=length)]
        coef = complex(rng.normal(), rng.normal())
        op = Operator(coef)
        ref = coef * np.eye(16)
        for is_dag, mode in picks:
            op = op * (c_dag(*mode) if is_dag else c(*mode))
            ref = ref @ (C_MAT[mode].T if is_dag else C_MAT[mode])
        np.testing.assert_allclose(op_matrix(op), ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(op_matrix(dagger(op)), ref.conj().T, rtol=0, atol=1e-12)
        for w, _ in monomials(op):  # canonical: creators first
            flags = [o[0] for o in w]
            assert flags == sorted(flags, reverse=True)


def test_scalar_arithmetic_and_zero():
    x = c("up", 0)
    assert 2 * x == x * 2 == x + x
    assert x / 4 == 0.25 * x
    assert np.float64(2.0) * x == 2 * x
    assert np.int64(3) * x == 3 * x
    assert -x == (-1) * x
    assert Operator(3) == 3
    assert Operator(2.5) + 1 == Operator(3.5)
    assert 1 - Operator(1) == 0
    assert Operator().is_zero() and (0 * x).is_zero() and (n("up", 0) - n("up", 0)).is_zero()
    assert list(Operator()) == []
    assert repr(Operator()) == "0"
    assert Operator(x) == x and Operator(x) is not x
    assert (1e-3 * x).is_almost_zero(precision=1e-2)
    assert not (1e-3 * x).is_almost_zero(precision=1e-4)
    op = (1 + 2j) * x + 3
    assert op.real == x + 3 and op.imag == 2 * x


def test_triqs_iteration_format():
    assert list(n("up", 0)) == [([[True, ["up", 0]], [False, ["up", 0]]], 1)]
    assert list(Operator(2.5)) == [([], 2.5)]
    terms = dict((repr(m), v) for m, v in 2 * n("up", 0) + 0.5)
    assert terms == {"[]": 0.5, "[[True, ['up', 0]], [False, ['up', 0]]]": 2}


def test_repr_is_triqs_like_and_evaluates_back():
    assert repr(2 * n("up", 0)) == "2*c_dag('up',0)*c('up',0)"
    assert str(c("up", 0) * c_dag("up", 0)) == "1 + -1*c_dag('up',0)*c('up',0)"
    U, Up = U_matrix_kanamori(2, 4.0, 0.7)
    H = h_int_kanamori(SPINS, 2, U, Up, 0.7, off_diag=True) + 0.3j * c("up", "x")
    assert eval(repr(H), {"c": c, "c_dag": c_dag}) == H


def test_fundamental_operators():
    H = n("up", 0) * n("down", 1) + c_dag("up", "x") * c("up", 0)
    assert fundamental_operators(H) == {("up", 0), ("down", 1), ("up", "x")}
    assert fundamental_operators(Operator(1)) == set()


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def test_bad_indices_raise():
    with pytest.raises(TypeError, match="block name must be a str"):
        c(0, "up")
    with pytest.raises(TypeError, match="index must be an int or a str"):
        c_dag("up", 1.5)
    with pytest.raises(TypeError, match="index must be an int or a str"):
        n("up", None)


def test_bad_coefficients_raise():
    with pytest.raises(TypeError, match="cannot multiply an Operator and a str"):
        c("up", 0) * "2"
    with pytest.raises(TypeError, match="cannot add an Operator and a list"):
        [1] + c("up", 0)
    with pytest.raises(TypeError, match="cannot multiply an Operator and a ndarray"):
        np.array([1.0, 2.0]) * c("up", 0)
    with pytest.raises(TypeError, match=r"Operator\(x\) must be a number.*got str"):
        Operator("1")
    with pytest.raises(TypeError, match="cannot divide by an Operator"):
        c("up", 0) / c("up", 0)
    with pytest.raises(TypeError, match="dagger\\(\\) takes an Operator"):
        dagger(3)


# ---------------------------------------------------------------------------
# density-density extraction
# ---------------------------------------------------------------------------

U_INT, J_HUND = 4.0, 0.5  # -> U' = U - 2J = 3.0, same-spin U' - J = 2.5


def test_U_matrix_kanamori_values():
    U, Up = U_matrix_kanamori(3, U_INT, J_HUND)
    np.testing.assert_array_equal(U, 2.5 * (1 - np.eye(3)))
    np.testing.assert_array_equal(Up, 4.0 * np.eye(3) + 3.0 * (1 - np.eye(3)))
    U, Up = U_matrix_kanamori(2, U_INT, J_HUND, Up_int=2.8)
    np.testing.assert_array_equal(U, [[0, 2.3], [2.3, 0]])
    np.testing.assert_array_equal(Up, [[4.0, 2.8], [2.8, 4.0]])


def test_density_density_matrix_recovers_inputs():
    U, Up = U_matrix_kanamori(2, U_INT, J_HUND)
    H = h_int_density(SPINS, 2, U, Up, off_diag=True)
    assert is_density_density(H)
    U_ij, eps_i = density_density_matrix(H, MODES)
    expected = np.array(
        [
            # (up,0) (down,0) (up,1) (down,1)
            [0.0, 4.0, 2.5, 3.0],
            [4.0, 0.0, 3.0, 2.5],
            [2.5, 3.0, 0.0, 4.0],
            [3.0, 2.5, 4.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(U_ij, expected)
    np.testing.assert_array_equal(eps_i, 0.0)
    # a dict index_map gives the same numbers in its own order
    order = {("down", 1): 0, ("up", 0): 1, ("down", 0): 2, ("up", 1): 3}
    U2, _ = density_density_matrix(H, order)
    perm = [MODES.index(k) for k in sorted(order, key=order.get)]
    np.testing.assert_array_equal(U2, expected[np.ix_(perm, perm)])


def test_density_density_matrix_linear_terms_and_general_matrices():
    rng = np.random.default_rng(7)
    A = rng.normal(size=(3, 3))
    U = A + A.T  # nonzero diagonal -> 0.5 * U[a, a] n_a goes to eps
    B = rng.normal(size=(3, 3))
    Up = B + B.T
    H = h_int_density(SPINS, 3, U, Up, off_diag=False) - 0.7 * n("up_1", 0)
    index = [(f"{s}_{a}", 0) for a in range(3) for s in SPINS]
    U_ij, eps_i = density_density_matrix(H, index)
    for (i, (bi, _)), (j, (bj, _)) in itertools.product(enumerate(index), repeat=2):
        si, ai = bi.split("_")
        sj, aj = bj.split("_")
        if i == j:
            assert U_ij[i, j] == 0
            continue
        want = (U if si == sj else Up)[int(ai), int(aj)]
        assert U_ij[i, j] == pytest.approx(want, rel=0, abs=1e-13)
    want_eps = 0.5 * np.diag(U)[[int(b.split("_")[1]) for b, _ in index]]
    want_eps[index.index(("up_1", 0))] -= 0.7
    np.testing.assert_allclose(eps_i, want_eps, rtol=0, atol=1e-13)


def test_kanamori_is_not_density_density():
    U, Up = U_matrix_kanamori(2, U_INT, J_HUND)
    H = h_int_kanamori(SPINS, 2, U, Up, J_HUND, off_diag=True)
    assert not is_density_density(H)
    with pytest.raises(ValueError, match="not of the form n_i or n_i\\*n_j"):
        density_density_matrix(H, MODES)
    U_ij, _ = density_density_matrix(diagonal_part(H), MODES)
    U_dd, _ = density_density_matrix(h_int_density(SPINS, 2, U, Up, off_diag=True), MODES)
    np.testing.assert_array_equal(U_ij, U_dd)
    assert not is_density_density(n("up", 0) * n("up", 1) * n("down", 0))
    assert not is_density_density(c_dag("up", 0) * c("up", 1))


def test_density_density_matrix_bad_index_map():
    H = n("up", 0) * n("down", 0)
    with pytest.raises(ValueError, match="not in index_map"):
        density_density_matrix(H, [("up", 0)])
    with pytest.raises(ValueError, match="positions must be 0, 1"):
        density_density_matrix(H, {("up", 0): 0, ("down", 0): 2})
    with pytest.raises(ValueError, match="not a \\(block, index\\) tuple"):
        density_density_matrix(H, ["up", "down"])


# ---------------------------------------------------------------------------
# Kanamori in Fock space
# ---------------------------------------------------------------------------


def kanamori_brute_force(U, Up, J):
    """Kanamori H for 2 orbitals from its textbook formula, as a 16x16 matrix.

    H = U sum_a n_au n_ad + U' sum_{a!=b} n_au n_bd + (U'-J) sum_{a<b,s} n_as n_bs
        - J sum_{a!=b} c+_au c_ad c+_bd c_bu + J sum_{a!=b} c+_au c+_ad c_bd c_bu
    """
    cm, nm = C_MAT, {m: C_MAT[m].T @ C_MAT[m] for m in MODES}
    cd = {m: C_MAT[m].T for m in MODES}
    H = np.zeros((16, 16))
    for a in range(2):
        H += U * nm[("up", a)] @ nm[("down", a)]
    for a, b in itertools.permutations(range(2)):
        H += Up * nm[("up", a)] @ nm[("down", b)]
        H -= J * cd[("up", a)] @ cm[("down", a)] @ cd[("down", b)] @ cm[("up", b)]
        H += J * cd[("up", a)] @ cd[("down", a)] @ cm[("down", b)] @ cm[("up", b)]
    for s in SPINS:
        H += (Up - J) * nm[(s, 0)] @ nm[(s, 1)]
    return H


@pytest.mark.parametrize("Up_int", [None, 2.8])
def test_kanamori_fock_space_spectrum(Up_int):
    U, J = U_INT, J_HUND
    Up = U - 2 * J if Up_int is None else Up_int
    Umat, Upmat = U_matrix_kanamori(2, U, J, Up_int=Up_int)
    H = op_matrix(h_int_kanamori(SPINS, 2, Umat, Upmat, J, off_diag=True))
    np.testing.assert_allclose(H, H.conj().T, rtol=0, atol=1e-14)
    np.testing.assert_allclose(H, kanamori_brute_force(U, Up, J), rtol=0, atol=1e-13)
    np.testing.assert_allclose(H @ np.diag(N_PARTICLES), np.diag(N_PARTICLES) @ H, atol=0)
    H = H.real
    # N = 0, 1: no interaction energy
    np.testing.assert_allclose(sector_eigenvalues(H, 0), [0.0], atol=1e-13)
    np.testing.assert_allclose(sector_eigenvalues(H, 1), [0.0] * 4, atol=1e-13)
    # N = 2: spin triplet U'-J (x3); inter-orbital singlet U'+J; the two
    # doublons |a up, a down> mixed by pair hopping: U-J and U+J.
    # (U' = U-2J: U-3J x3, U-J x2, U+J x1.)
    want2 = sorted([Up - J] * 3 + [Up + J, U - J, U + J])
    np.testing.assert_allclose(sector_eigenvalues(H, 2), want2, rtol=0, atol=1e-13)
    # N = 3: one doublon + one electron, no spin-flip/pair-hop possible:
    # U + 2U' - J for all 4 states.
    np.testing.assert_allclose(sector_eigenvalues(H, 3), [U + 2 * Up - J] * 4, atol=1e-13)
    # N = 4: 2U + 4U' - 2J (= 6U - 10J at U' = U - 2J)
    np.testing.assert_allclose(sector_eigenvalues(H, 4), [2 * U + 4 * Up - 2 * J], atol=1e-13)


def test_kanamori_operator_naming():
    U, Up = U_matrix_kanamori(2, U_INT, J_HUND)
    H = h_int_kanamori(SPINS, 2, U, Up, J_HUND, off_diag=False)
    assert fundamental_operators(H) == {(f"{s}_{a}", 0) for s in SPINS for a in range(2)}
    mapping = {(s, a): (f"{s}_{a}", 0) for s in SPINS for a in range(2)}
    assert h_int_kanamori(SPINS, 2, U, Up, J_HUND, map_operator_structure=mapping) == H
    H_blocks = h_int_kanamori(SPINS, 2, U, Up, J_HUND, off_diag=True)
    modes = [mapping[m] for m in MODES]
    np.testing.assert_allclose(op_matrix(H, modes), op_matrix(H_blocks), atol=1e-13)


def test_hamiltonian_bad_input():
    U, Up = U_matrix_kanamori(2, U_INT, J_HUND)
    with pytest.raises(ValueError, match="provide either off_diag or map_operator_structure"):
        h_int_kanamori(SPINS, 2, U, Up, J_HUND)
    with pytest.raises(ValueError, match="U_matrix_kanamori"):
        h_int_kanamori(SPINS, 2, 4.0, 3.0, J_HUND, off_diag=True)
    with pytest.raises(ValueError, match=r"Uprime must have shape \(n_orb, n_orb\) = \(2, 2\)"):
        h_int_density(SPINS, 2, U, np.zeros((3, 3)), off_diag=True)
    with pytest.raises(TypeError, match="pass n_orb=len\\(orb_names\\)"):
        h_int_density(SPINS, [0, 1], U, Up, off_diag=True)
    with pytest.raises(TypeError, match="spin_names must be a list of str"):
        h_int_density("updown", 2, U, Up, off_diag=True)
    with pytest.raises(ValueError, match="no entry for \\('up', 1\\)"):
        h_int_density(SPINS, 2, U, Up, map_operator_structure={("up", 0): ("up", 0)})
    with pytest.raises(ValueError, match="values must be \\(block, index\\) tuples"):
        h_int_density(
            SPINS,
            1,
            U[:1, :1],
            Up[:1, :1],
            map_operator_structure={("up", 0): "up_0", ("down", 0): "down_0"},
        )
