# SPDX-License-Identifier: Apache-2.0
"""Representations of G, reversible transforms, particle-hole images and descriptors.

Every array here is dimensionless and carries a leading batch axis ``b``
(one row per sample); ``t`` is a tau point, ``l`` a Legendre index, ``f`` a
feature, ``o`` an output component.

Why dimensionless.  The AIM with every energy multiplied by ``c`` and
``beta`` divided by ``c`` has the same ``G`` as a function of ``x = tau /
beta``.  Energies in the database vary by a factor 10 (``D`` from 0.5 to 5),
so the representation uses ``G(x)`` (already dimensionless) or
``g_l = G_l / beta`` and the descriptors are ratios (``U/D``, ``eps/D``,
``log(beta D)``, bath moments in units of ``D``).  Two samples related by a
change of energy unit then have identical inputs and targets, and the network
does not have to learn that invariance from data.

Representations (:class:`Representation`)
-----------------------------------------
``kind = "tau"``
    ``G(x_t)`` on ``n`` points ``x_t = tau_t / beta`` of a ``"uniform"`` mesh
    (both ends included) or of an ``"adaptive"`` one (Chebyshev-Lobatto points
    ``x_t = (1 - cos(pi t / (n-1))) / 2``, denser near 0 and beta, where G
    varies fastest; the seed lecture uses 51 points).  ``source`` says how the
    values come from a database: ``"G_tau"`` interpolates the stored uniform
    ``G(tau)`` with a quintic spline (exact when the mesh is the stored one);
    ``"G_l"`` evaluates the stored Legendre series with
    :func:`~triqs_mlsolver.gf.transforms.legendre_to_tau` (exact up to the
    truncation at ``L`` coefficients, which is not negligible at
    ``beta D >= 100``).  Decoding back to another tau grid uses a cubic spline
    through the mesh points (node values kept exactly).
``kind = "legendre"``
    ``g_l = G_l / beta`` for ``l < n``; ``G(x) = sum_l sqrt(2l+1) P_l(2x-1) g_l``.
    ``parity = "even"`` or ``"odd"`` keeps only the even (symmetric in
    ``tau -> beta - tau``) or odd (antisymmetric) coefficients, so the two parts
    can be learned separately.

For both, :meth:`Representation.constraint` gives the vector ``a`` with
``a . y = G(0+) + G(beta-)`` and :meth:`Representation.metric` weights ``w``
with ``sum_o w_o y_o^2 ~ int_0^1 G(x)^2 dx`` (exact for Legendre,
trapezoidal for the tau meshes).

Spin-resolved rows
------------------
A spin-resolved model's rows carry the other spin's parameters (``mu_o``, ``eps_k_o``,
``V_k_o``); :func:`polarisation_descriptors` gives what distinguishes it from the row's
own spin (exact zeros for a spin-symmetric row) and :func:`polarisation_ranges` the
ranges a model file's domain records.

Particle-hole image
-------------------
``c_sigma -> c^dagger_sigma`` maps the AIM ``(U, mu, eps_k, V_k)`` to
``(U, U - mu, -eps_k, V_k)`` and ``G(tau)`` to ``G(beta - tau)``;
in Legendre ``G_l -> (-1)^l G_l``.  A particle-hole symmetric sample
(``mu = U/2`` and a symmetric bath) is its own image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial import legendre as npleg

from ..gf import transforms as tr

__all__ = [
    "Representation",
    "SigmaTarget",
    "tau_mesh",
    "Transform",
    "TRANSFORMS",
    "DESCRIPTORS",
    "descriptors",
    "ph_image_params",
    "polarisation_descriptors",
    "polarisation_ranges",
    "constraint_projection",
    "project_tau_physical",
]

KINDS = ("tau", "legendre")
MESHES = ("uniform", "adaptive", "log")
SOURCES = ("G_tau", "G_l")
PARITIES = ("both", "even", "odd")


def tau_mesh(kind: str, n: int) -> np.ndarray:
    """Points ``x = tau / beta`` in ``[0, 1]``, both ends included, ``x[::-1] == 1 - x`` exactly.

    ``"uniform"``: ``linspace(0, 1, n)``; ``"adaptive"``: Chebyshev-Lobatto
    points ``(1 - cos(pi t / (n-1))) / 2``; ``"log"``: geometric towards both ends
    (:func:`~triqs_mlsolver.gf.transforms.log_tau_mesh`, ``n`` odd; the stored mesh of the
    single-band databases, where ``beta D`` reaches 400).
    """
    if kind not in MESHES:
        raise ValueError(f"tau mesh {kind!r}: use one of {MESHES}")
    if kind == "log":
        return tr.log_tau_mesh(n)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 3:
        raise ValueError(f"a tau mesh needs an integer number of points >= 3, got {n!r}")
    t = np.arange(n)
    x = t / (n - 1) if kind == "uniform" else (1.0 - np.cos(np.pi * t / (n - 1))) / 2
    half = (n + 1) // 2
    x[n - half :] = 1.0 - x[:half][::-1]  # exact mirror symmetry
    if n % 2:
        x[n // 2] = 0.5
    x[0], x[-1] = 0.0, 1.0
    return x


def _trapezoid_weights(x):
    w = np.zeros_like(x)
    d = np.diff(x)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def _spline(x, y_bt, k):
    from scipy.interpolate import make_interp_spline

    return make_interp_spline(x, np.asarray(y_bt).T, k=min(k, len(x) - 1), axis=0)


@dataclass(frozen=True)
class Representation:
    """How one Green's function of a sample becomes a vector (see the module docstring).

    Parameters
    ----------
    kind : {"tau", "legendre"}
    n : int
        Tau points or Legendre coefficients.
    mesh : {"uniform", "adaptive", "log"}
        Tau mesh (``kind="tau"`` only).
    source : {"G_tau", "G_l"}
        Stored data the tau values are computed from (``kind="tau"`` only).
    parity : {"both", "even", "odd"}
        Legendre coefficients kept (``kind="legendre"`` only).
    """

    kind: str = "tau"
    n: int = 51
    mesh: str = "adaptive"
    source: str = "G_tau"
    parity: str = "both"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"representation kind {self.kind!r}: use one of {KINDS}")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 3:
            raise ValueError(f"representation size n={self.n!r}: expected an integer >= 3")
        if self.mesh not in MESHES:
            raise ValueError(f"tau mesh {self.mesh!r}: use one of {MESHES}")
        if self.source not in SOURCES:
            raise ValueError(f"representation source {self.source!r}: use one of {SOURCES}")
        if self.parity not in PARITIES:
            raise ValueError(f"Legendre parity {self.parity!r}: use one of {PARITIES}")
        if self.kind == "tau" and self.parity != "both":
            raise ValueError("parity selects Legendre coefficients; use kind='legendre'")

    # -- description ----------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Representation:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown representation keys {sorted(unknown)}")
        return cls(**d)

    @property
    def l_index(self) -> np.ndarray:
        """Legendre indices kept (``kind="legendre"``)."""
        l = np.arange(self.n)
        if self.parity == "even":
            return l[l % 2 == 0]
        if self.parity == "odd":
            return l[l % 2 == 1]
        return l

    @property
    def size(self) -> int:
        """Length of the vector of one function."""
        return self.n if self.kind == "tau" else len(self.l_index)

    @property
    def x(self) -> np.ndarray:
        """The tau mesh ``tau / beta`` (``kind="tau"``)."""
        return tau_mesh(self.mesh, self.n)

    def describe(self) -> str:
        if self.kind == "tau":
            return f"G(tau) on {self.n} {self.mesh} points (from stored {self.source})"
        return f"G_l/beta, l < {self.n} ({self.parity})"

    # -- encode / decode --------------------------------------------------------
    def encode(self, G_bt=None, G_bl=None, beta_b=None, x_stored=None) -> np.ndarray:
        """Vectors ``y_bo`` of the functions of a batch.

        Parameters
        ----------
        G_bt : ndarray (b, T), optional
            ``G(tau)`` on the stored uniform points ``x_stored`` (``tau/beta``).
        G_bl : ndarray (b, L), optional
            Stored Legendre coefficients (dimensionful, ``G_l``).
        beta_b : ndarray (b,)
        x_stored : ndarray (T,), optional
            Default ``linspace(0, 1, T)``.
        """
        if self.kind == "legendre":
            if G_bl is None or beta_b is None:
                raise ValueError("the Legendre representation needs G_l and beta")
            G_bl = np.atleast_2d(G_bl)
            if G_bl.shape[1] < self.n:
                raise ValueError(
                    f"the representation needs n_l >= {self.n} Legendre coefficients; the "
                    f"data has {G_bl.shape[1]}. Use a database with more n_l or a smaller n"
                )
            return G_bl[:, self.l_index] / np.asarray(beta_b, float)[:, None]
        x = self.x
        if self.source == "G_l":
            if G_bl is None or beta_b is None:
                raise ValueError("source='G_l' needs the Legendre coefficients and beta")
            G_bl = np.atleast_2d(G_bl)
            beta_b = np.asarray(beta_b, float)
            # G(x) = sum_l sqrt(2l+1)/beta P_l(2x-1) G_l: the same matrix for every beta
            V = npleg.legvander(2 * x - 1, G_bl.shape[1] - 1) * np.sqrt(
                2 * np.arange(G_bl.shape[1]) + 1
            )
            return (G_bl / beta_b[:, None]) @ V.T
        if G_bt is None:
            raise ValueError("source='G_tau' needs G(tau) on the stored mesh")
        G_bt = np.atleast_2d(G_bt)
        xs = np.linspace(0.0, 1.0, G_bt.shape[1]) if x_stored is None else np.asarray(x_stored)
        if len(xs) == len(x) and np.allclose(xs, x, rtol=0, atol=1e-14):
            return G_bt.copy()
        return _spline(xs, G_bt, 5)(x).T

    def decode_tau(self, y_bo, x_out, beta_b=None) -> np.ndarray:
        """``G(x)`` at the points ``x_out`` (``tau/beta``) from ``y_bo``; shape (b, len(x_out))."""
        y_bo = np.atleast_2d(y_bo)
        x_out = np.asarray(x_out, float)
        if self.kind == "legendre":
            l = self.l_index
            P = npleg.legvander(2 * x_out - 1, self.n - 1)[:, l] * np.sqrt(2 * l + 1)
            return y_bo @ P.T
        x = self.x
        if len(x_out) == len(x) and np.allclose(x_out, x, rtol=0, atol=1e-14):
            return y_bo.copy()
        return _spline(x, y_bo, 3)(x_out).T

    def decode_legendre(self, y_bo, beta_b, n_l: int) -> np.ndarray:
        """Legendre coefficients ``G_l`` (dimensionful), ``l < n_l``, shape (b, n_l)."""
        y_bo = np.atleast_2d(y_bo)
        beta_b = np.asarray(beta_b, float)
        if self.kind == "legendre":
            out = np.zeros((y_bo.shape[0], n_l))
            l = self.l_index
            keep = l < n_l
            out[:, l[keep]] = y_bo[:, keep]
            return out * beta_b[:, None]
        # through a fine uniform grid and the spline-Gauss projection of gf.transforms
        x_f = np.linspace(0.0, 1.0, 401)
        G_ft = self.decode_tau(y_bo, x_f).T
        return np.stack(
            [tr.tau_to_legendre(G_ft[:, i], b, n_l) for i, b in enumerate(beta_b)]
        )

    # -- structure --------------------------------------------------------------
    def ph_image(self, y_bo) -> np.ndarray:
        """The vectors of ``G(beta - tau)`` (particle-hole image)."""
        y_bo = np.asarray(y_bo)
        if self.kind == "legendre":
            return y_bo * np.where(self.l_index % 2 == 0, 1.0, -1.0)
        return y_bo[..., ::-1].copy()

    def constraint(self) -> np.ndarray:
        """``a`` with ``a . y = G(0+) + G(beta-)``.

        Legendre: ``G(0) + G(beta) = sum_l sqrt(2l+1) (P_l(-1) + P_l(1)) g_l
        = sum_l sqrt(2l+1) (1 + (-1)^l) g_l`` (even ``l`` only).  Tau: the two
        end points.
        """
        if self.kind == "legendre":
            l = self.l_index
            return np.sqrt(2 * l + 1) * (1.0 + (-1.0) ** l)
        a = np.zeros(self.n)
        a[0] = a[-1] = 1.0
        return a

    def metric(self) -> np.ndarray:
        """Weights ``w`` with ``sum w y^2 ~ int_0^1 G(x)^2 dx``."""
        if self.kind == "legendre":
            return np.ones(self.size)
        return _trapezoid_weights(self.x)


#: Positive Matsubara frequencies summed explicitly when a self-energy correction is decoded
#: (beyond them the remainder falls off like ``(i w)^-4`` after the subtracted tail).
SIGMA_N_SUM = 1024
#: Rows decoded at once by SigmaTarget (bounds the (rows, SIGMA_N_SUM) complex arrays).
_CHUNK = 512


@dataclass(frozen=True)
class SigmaTarget:
    r"""The self-energy correction as the learning target (the seed lecture's :math:`\Sigma^3`).

    A Green's function is represented by

    .. math:: y_n = -\frac{1}{i\omega_n G(i\omega_n)}
              = \frac{\Sigma(i\omega_n) - G_0^{-1}(i\omega_n)}{i\omega_n},
              \qquad 0 \le n < N,

    stored as ``[Re y_0 .. Re y_{N-1}, Im y_0 .. Im y_{N-1}]`` (dimensionless;
    ``-1`` for a free particle at high frequency).  :math:`G(i\omega_n)` comes from
    the first ``n_l`` stored Legendre coefficients (``G(i w_n) = sum_l T_nl G_l``).
    For two solutions of the same AIM :math:`G_0` cancels:
    :math:`y^\text{ref}_n - y^\text{base}_n = (\Sigma_\text{ref} -
    \Sigma_\text{base})(i\omega_n) / i\omega_n`, the self-energy correction (with
    :math:`\Sigma_\text{base} = G_0^{-1} - G_\text{base}^{-1}` the base's self-energy in
    the exact hybridisation; for ED-k this includes its bath-fit error).

    Decoding (:meth:`decode_tau`, :meth:`decode_legendre`) is Dyson's equation:
    :math:`G = (G_\text{base}^{-1} - \Delta\Sigma)^{-1}` for ``n < N``, and beyond,
    :math:`\Delta\Sigma(i\omega_n) = a + b/(i\omega_n)` continued from ``n = N-1``
    (``a`` the Hartree shift ``U (n_ref - n_base)``, ``b`` from the imaginary part), up
    to ``n = SIGMA_N_SUM``; :math:`\Delta G(i\omega) = G - G_\text{base}` falls off like
    ``a/(i w)^2 + c_3/(i w)^3 + c_4/(i w)^4`` (``c_3``, ``c_4`` read off the last
    frequency), and that tail is transformed analytically.  Causality: ``Im Delta Sigma``
    is clipped at ``Im G_base^-1 - w_n`` (the exact G has ``Im G^-1(i w_n) >= w_n``).  The sum
    rule :math:`\Delta G(0^+) + \Delta G(\beta^-) = 0` holds by construction (every
    Matsubara term and every tail term is antiperiodic), so no projection is needed.
    ``decode(encode(G_ref) - encode(G_base))`` reproduces ``G_ref - G_base`` up to the
    continuation beyond ``N`` (the floor, doc/ml.rst).

    The *Dyson scale* (:meth:`dyson_scale`, ``target_scale = "dyson"``):
    ``s_n = beta / (w_n |G_base(i w_n)|^2)``.  To first order
    :math:`\delta G_n = G_n^2\, i\omega_n\, \delta y_n`, so the scaled target
    ``Delta y_n / s_n`` has the size of :math:`\Delta G(i\omega_n)/\beta` and its
    mean-square error is (Parseval) the error of :math:`G(\tau)` from the first N
    frequencies -- without it the loss would be dominated by the huge self-energies of
    Mott insulators, where they hardly change G.

    Particle-hole image: :math:`G(i\omega) \to -G(i\omega)^*`, so :math:`y \to y^*`.
    """

    n: int = 32
    n_l: int = 40

    def __post_init__(self):
        for name, v, lo in (("n", self.n, 2), ("n_l", self.n_l, 2)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"self-energy target {name}={v!r}: expected an integer "
                                 f">= {lo}")
        if self.n >= SIGMA_N_SUM:
            raise ValueError(f"self-energy target n={self.n}: at most {SIGMA_N_SUM - 1} "
                             "Matsubara frequencies")

    def to_dict(self) -> dict:
        return {"kind": "sigma", "n": int(self.n), "n_l": int(self.n_l)}

    @classmethod
    def from_dict(cls, d: dict) -> SigmaTarget:
        d = dict(d)
        if d.pop("kind", "sigma") != "sigma":
            raise ValueError(f"not a self-energy target: {d}")
        unknown = set(d) - {"n", "n_l"}
        if unknown:
            raise ValueError(f"unknown self-energy target keys {sorted(unknown)}")
        return cls(**d)

    @property
    def size(self) -> int:
        return 2 * self.n

    def describe(self) -> str:
        return (f"Sigma correction (Sigma_ref - Sigma_base)/(i w_n), n < {self.n} "
                f"(G(i w_n) from {self.n_l} Legendre coefficients; Dyson decode)")

    # -- Matsubara values ---------------------------------------------------------
    def _G_iw(self, G_bl, n_count):
        G_bl = np.atleast_2d(np.asarray(G_bl, float))
        if G_bl.shape[1] < self.n_l:
            raise ValueError(
                f"the self-energy target needs n_l >= {self.n_l} Legendre coefficients; the "
                f"data has {G_bl.shape[1]}. Use a database with more n_l or a smaller n_l"
            )
        T = tr.legendre_matrix_iw(np.arange(n_count), self.n_l)  # (n, l)
        return G_bl[:, : self.n_l] @ T.T

    @staticmethod
    def _iw(beta_b, n_count):
        return 1j * np.pi * (2 * np.arange(n_count) + 1) / np.asarray(beta_b, float)[:, None]

    def encode(self, G_bl, beta_b) -> np.ndarray:
        """``[Re y, Im y]`` of a batch (``G_bl`` the stored Legendre coefficients)."""
        Gw = self._G_iw(G_bl, self.n)
        y = -1.0 / (self._iw(beta_b, self.n) * Gw)
        return np.concatenate([y.real, y.imag], axis=1)

    def dyson_scale(self, G_bl, beta_b) -> np.ndarray:
        """``s_bn = beta / (w_n |G(i w_n)|^2)`` of the base, tiled for Re and Im: (b, 2N)."""
        Gw = self._G_iw(G_bl, self.n)
        beta_b = np.asarray(beta_b, float)
        s = beta_b[:, None] / (np.abs(self._iw(beta_b, self.n)) * np.abs(Gw) ** 2)
        return np.concatenate([s, s], axis=1)

    def ph_image(self, y_bo) -> np.ndarray:
        y_bo = np.asarray(y_bo)
        return np.concatenate([y_bo[..., : self.n], -y_bo[..., self.n :]], axis=-1)

    def correction_iw(self, dy_bo, G_bl_base, beta_b):
        """``(Delta G(i w_n), n < SIGMA_N_SUM; moments [0, 0, a, c3, c4])`` of a batch
        (``c3``, ``c4`` from the last frequency: the imaginary and real parts of
        ``Delta G - a/(i w)^2``)."""
        dy_bo = np.atleast_2d(np.asarray(dy_bo, float))
        beta_b = np.asarray(beta_b, float)
        M, N = SIGMA_N_SUM, self.n
        Gb = self._G_iw(G_bl_base, M)
        iw = self._iw(beta_b, M)
        dS = iw[:, :N] * (dy_bo[:, :N] + 1j * dy_bo[:, N:])  # Delta Sigma, n < N
        a = dS[:, -1].real
        bt = -iw[:, N - 1].imag * dS[:, -1].imag  # Delta Sigma ~ a + bt / (i w)
        dS_tail = a[:, None] + bt[:, None] / iw[:, N:]
        dS = np.concatenate([dS, dS_tail], axis=1)
        # causality: Im G^-1(i w_n) = w_n - Im Delta - Im Sigma >= w_n for the exact G, i.e.
        # Im Delta Sigma <= Im G_base^-1 - w_n; the exact correction obeys it, so clipping
        # only moves a prediction towards it (and |G(i w_n)| <= 1/w_n: no Dyson blow-up)
        inv = 1.0 / Gb
        dS = dS.real + 1j * np.minimum(dS.imag, inv.imag - iw.imag)
        G = 1.0 / (inv - dS)
        dG = G - Gb
        w = iw[:, -1].imag
        rem = dG[:, -1] + a / w**2  # Delta G - a/(i w)^2 = i c3/w^3 + c4/w^4 + ...
        z = np.zeros_like(a)
        mom = np.stack([z, z, a, rem.imag * w**3, rem.real * w**4], axis=1)
        return dG, mom

    @staticmethod
    def _remainder(dG, mom, iw):
        return dG - mom[:, 2:3] / iw**2 - mom[:, 3:4] / iw**3 - mom[:, 4:5] / iw**4

    def _chunked(self, fn, dy_bo, G_bl_base, beta_b, *args):
        """``fn`` over blocks of ``_CHUNK`` rows (the Matsubara arrays are (b, 1024))."""
        dy_bo = np.atleast_2d(np.asarray(dy_bo, float))
        G_bl_base = np.atleast_2d(np.asarray(G_bl_base, float))
        beta_b = np.asarray(beta_b, float)
        return np.concatenate([fn(dy_bo[i:i + _CHUNK], G_bl_base[i:i + _CHUNK],
                                  beta_b[i:i + _CHUNK], *args)
                               for i in range(0, max(len(dy_bo), 1), _CHUNK)])

    def decode_tau(self, dy_bo, G_bl_base, beta_b, x_out) -> np.ndarray:
        """``Delta G(x)`` at ``x_out = tau/beta`` from the correction ``dy_bo``."""
        return self._chunked(self._decode_tau, dy_bo, G_bl_base, beta_b,
                             np.asarray(x_out, float))

    def _decode_tau(self, dy_bo, G_bl_base, beta_b, x_out):
        dG, mom = self.correction_iw(dy_bo, G_bl_base, beta_b)
        R = self._remainder(dG, mom, self._iw(beta_b, SIGMA_N_SUM))
        E = _sigma_phases(x_out.tobytes())
        out = (2.0 / beta_b[:, None]) * (R @ E).real
        F = tr.tail_polynomials(1.0, 4)  # F_k(beta x) = beta^(k-1) F_k(x)|_{beta=1}
        for k in (2, 3, 4):
            out += (mom[:, k] * beta_b ** (k - 1))[:, None] * F[k - 1](x_out)[None, :]
        return out

    def decode_legendre(self, dy_bo, G_bl_base, beta_b, n_l: int) -> np.ndarray:
        """``Delta G_l`` (dimensionful), ``l < n_l``, shape (b, n_l)."""
        return self._chunked(self._decode_legendre, dy_bo, G_bl_base, beta_b, int(n_l))

    def _decode_legendre(self, dy_bo, G_bl_base, beta_b, n_l):
        dG, mom = self.correction_iw(dy_bo, G_bl_base, beta_b)
        R = self._remainder(dG, mom, self._iw(beta_b, SIGMA_N_SUM))
        T = tr.legendre_matrix_iw(np.arange(SIGMA_N_SUM), n_l)
        # sum over n in Z of conj(T_nl) R_n; the n < 0 half is the complex conjugate
        out = 2.0 * (R @ np.conj(T)).real
        L = tr._legendre_of_tail(1.0, n_l, 4)  # sqrt(2l+1) int P_l F_k, scales as beta^k
        for k in (2, 3, 4):
            out += (mom[:, k] * beta_b**k)[:, None] * L[None, :, k - 1]
        return out


@lru_cache(maxsize=8)
def _sigma_phases(x_bytes: bytes) -> np.ndarray:
    """``exp(-i w_n tau)`` for ``n < SIGMA_N_SUM`` at ``x = tau/beta`` (cached per grid)."""
    x = np.frombuffer(x_bytes, float)
    n = np.arange(SIGMA_N_SUM)
    out = np.exp(-1j * np.pi * np.outer(2 * n + 1, x))
    out.setflags(write=False)
    return out


def constraint_projection(y_bo, a, r_b=0.0, w=None) -> np.ndarray:
    """Project ``y_bo`` onto ``{y : a . y = r_b}``, orthogonally in the metric ``diag(w)``.

    ``y - (a.y - r) w^-1 a / (a . w^-1 a)``.  With ``w`` the metric of the
    error norm, the distance to any ``y_true`` on the constraint never grows.
    For the tau meshes the projection uses the plain Euclidean metric
    (``w = None``): it then moves only the two end points, and the node values
    of the other points stay as predicted.
    """
    y_bo = np.asarray(y_bo, float)
    a = np.asarray(a, float)
    winv_a = a if w is None else a / np.asarray(w, float)
    norm = a @ winv_a
    if norm == 0.0:  # e.g. odd Legendre coefficients only: G(0) + G(beta) is unaffected
        return y_bo.copy()
    c = (y_bo @ a - r_b) / norm
    return y_bo - np.multiply.outer(c, winv_a)


def project_tau_physical(G_bt) -> np.ndarray:
    """Euclidean projection of G on a tau grid with both ends onto the physical set.

    The set ``{G(tau_t) <= 0 for all t, G(0) + G(beta) = -1}`` is convex and
    holds the exact G, so the projection never increases the error on that
    grid.  Interior points are clipped at 0; the end points ``(a, b)`` are
    projected onto the segment ``a + b = -1, a <= 0, b <= 0``.
    """
    G_bt = np.atleast_2d(np.asarray(G_bt, float))
    G = np.minimum(G_bt, 0.0)
    shift = (G_bt[:, 0] + G_bt[:, -1] + 1.0) / 2
    a = np.clip(G_bt[:, 0] - shift, -1.0, 0.0)  # nearest point of the segment
    G[:, 0], G[:, -1] = a, -1.0 - a
    return G


# -- transforms -----------------------------------------------------------------
#: Elementwise transforms of the seed lecture: name -> (T, T^-1).
TRANSFORMS = {
    "identity": (lambda v: v, lambda v: v),
    "tanh": (np.tanh, np.arctanh),
    "-tanh": (lambda v: -np.tanh(v), lambda v: np.arctanh(-v)),
}


class Transform:
    """Elementwise transform followed by an affine rescaling fitted on the training set.

    ``z = (T(v) - shift) / scale`` and the exact inverse
    ``v = T^-1(z * scale + shift)``.  ``T`` is ``"identity"``, ``"tanh"`` or
    ``"-tanh"`` (the seed lecture's T0, T1, T2), applied to the components
    where ``mask`` is true (default: all; the feature builder applies it to the
    Green's-function components only, not to the scalar descriptors).
    ``affine = True`` fits ``shift`` (mean) and ``scale`` (standard deviation,
    or 1 where it vanishes) per component on the training set.  The inverse of
    ``tanh`` clips its argument to ``|u| <= 1 - 1e-15`` so that a network output
    outside ``(-1, 1)`` gives a large finite value, not NaN.  The inverse is
    exact up to rounding amplified by ``cosh(v)^2`` (1e-12 for ``|v| < 3``):
    tanh suits values of order one, which is why it is applied after the
    dimensionless scaling and never to the logarithmic features.

    Attributes
    ----------
    name : str
    affine : bool
    mask : ndarray (f,) of bool or None (all components)
    shift, scale : ndarray (f,), None before :meth:`fit`
    """

    def __init__(self, name: str = "identity", *, affine: bool = True, mask=None, shift=None,
                 scale=None):
        if name not in TRANSFORMS:
            raise ValueError(f"transform {name!r}: use one of {list(TRANSFORMS)}")
        self.name = name
        self.affine = bool(affine)
        self.mask = None if mask is None else np.asarray(mask, bool)
        self.shift = None if shift is None else np.asarray(shift, float)
        self.scale = None if scale is None else np.asarray(scale, float)

    def _elementwise(self, v, which):
        f = TRANSFORMS[self.name][which]
        if self.name == "identity":
            return v
        if which == 1:
            v = np.clip(v, -1.0 + 1e-15, 1.0 - 1e-15) if self.mask is None else np.where(
                self.mask, np.clip(v, -1.0 + 1e-15, 1.0 - 1e-15), v)
        if self.mask is None:
            return f(v)
        out = v.copy()
        out[..., self.mask] = f(v[..., self.mask])
        return out

    def fit(self, v_bf) -> Transform:
        u = self._elementwise(np.asarray(v_bf, float), 0)
        if self.affine:
            self.shift = u.mean(axis=0)
            s = u.std(axis=0)
            self.scale = np.where(s > 1e-300, s, 1.0)
        else:
            self.shift = np.zeros(u.shape[1])
            self.scale = np.ones(u.shape[1])
        return self

    def _check(self):
        if self.shift is None:
            raise RuntimeError("Transform.fit() must be called before the transform is used")

    def forward(self, v_bf) -> np.ndarray:
        self._check()
        return (self._elementwise(np.asarray(v_bf, float), 0) - self.shift) / self.scale

    def inverse(self, z_bf) -> np.ndarray:
        self._check()
        return self._elementwise(np.asarray(z_bf, float) * self.scale + self.shift, 1)

    def to_dict(self) -> dict:
        self._check()
        return {"name": self.name, "affine": self.affine,
                "mask": None if self.mask is None else self.mask.tolist(),
                "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Transform:
        return cls(d["name"], affine=d["affine"], mask=d.get("mask"), shift=d["shift"],
                   scale=d["scale"])


# -- descriptors ------------------------------------------------------------------
def _moment(n):
    def f(p):
        D = p["D"]
        return (p["V_k"] ** 2 * p["eps_k"] ** n).sum(axis=1) / D ** (n + 2)

    return f


#: Scalar descriptors: name -> (function of the parameter arrays, particle-hole parity).
#: Parity -1: the descriptor changes sign under the particle-hole map.
DESCRIPTORS = {
    "U/D": (lambda p: p["U"] / p["D"], 1),
    "eps/D": (lambda p: (p["U"] / 2 - p["mu"]) / p["D"], -1),
    "log(beta*D)": (lambda p: np.log(p["beta"] * p["D"]), 1),
    "log(beta*U)": (lambda p: np.log(p["beta"] * np.maximum(p["U"], 1e-12)), 1),
    "m0": (_moment(0), 1),
    "m1": (_moment(1), -1),
    "m2": (_moment(2), 1),
    "m3": (_moment(3), -1),
    "U": (lambda p: p["U"], 1),
    "mu-U/2": (lambda p: p["mu"] - p["U"] / 2, -1),
    "beta": (lambda p: p["beta"], 1),
    "log(beta)": (lambda p: np.log(p["beta"]), 1),
    "D": (lambda p: p["D"], 1),
}
#: Bath descriptors ``bath_e<k>`` = k-th sorted ``eps_k / D`` and ``bath_v<k>`` = ``V_k^2 / D^2``
#: of the same site are added by :func:`descriptors` for ``"bath"`` (decoupled sites,
#: ``V_k = 0`` -- the padding of a bath smaller than the database's ``K``, format 4 -- come
#: after the coupled ones with ``bath_e = bath_v = 0``, so the padding changes no column of
#: the sites a sample has); ``"delta"`` adds the
#: Legendre coefficients ``Delta_l / (beta D^2)``, ``l < N_DELTA``, of the hybridisation
#: (the shape of a continuous bath; from ``params["delta_l"]`` when given, else exact from
#: the discrete bath).
DEFAULT_DESCRIPTORS = ["U/D", "eps/D", "log(beta*D)", "m0", "m1", "m2", "m3"]


#: Legendre coefficients of the hybridisation used by the ``"delta"`` descriptor
#: (``"delta<n>"``, e.g. ``"delta40"``, takes the first ``n``, at most ``N_DELTA_MAX``).
N_DELTA = 20
N_DELTA_MAX = 80


def delta_size(name: str) -> int:
    """Number of ``Delta_l`` of the descriptor ``name`` ("delta" or "delta<n>"); 0 if it is
    not a Delta descriptor.  Raises ``ValueError`` for a malformed ``delta<n>``."""
    if name == "delta":
        return N_DELTA
    if not name.startswith("delta"):
        return 0
    rest = name[len("delta"):]
    if not rest.isdigit() or not 1 <= int(rest) <= N_DELTA_MAX:
        raise ValueError(f"descriptor {name!r}: use 'delta' ({N_DELTA} coefficients) or "
                         f"'delta<n>' with 1 <= n <= {N_DELTA_MAX}, e.g. 'delta40'")
    return int(rest)


def n_delta_needed(names) -> int:
    """The most ``Delta_l`` any of the descriptors ``names`` uses (0: none)."""
    return max((delta_size(n) for n in names), default=0)


def delta_legendre(eps_k, V_k, beta, n_l=N_DELTA) -> np.ndarray:
    """Exact ``Delta_l`` of the discrete baths ``(eps_k, V_k)`` (b, K), shape (b, n_l).

    ``Delta(tau) = -sum_k V_k^2 e^{-eps_k tau} / (1 + e^{-beta eps_k})`` has the form of a
    Green's function with poles ``eps_k`` and weights ``V_k^2``.
    """
    from ..solvers.solution import legendre_of_poles

    eps_k, V_k = np.atleast_2d(eps_k), np.atleast_2d(V_k)
    beta = np.broadcast_to(np.asarray(beta, float), (len(eps_k),))
    return np.stack([legendre_of_poles(e, v**2, b, n_l) for e, v, b in zip(eps_k, V_k, beta)])


def _delta(p, n=N_DELTA):
    """``Delta_l / (beta D^2)``, ``l < n`` (dimensionless): the shape of the bath."""
    if "delta_l" in p:
        dl = p["delta_l"]
        if dl.shape[1] < n:
            raise ValueError(f"{n} Legendre coefficients of Delta needed, {dl.shape[1]} given")
    else:
        dl = delta_legendre(p["eps_k"], p["V_k"], p["beta"], n)
    return dl[:, :n] / (p["beta"] * p["D"] ** 2)[:, None]


def _bath(p):
    """``eps_k / D`` sorted and the matching ``V_k^2 / D^2``, (b, K) each; decoupled sites
    (``V_k = 0``: padding) last, as ``(0, 0)``.  A bath without decoupled sites is sorted
    exactly as before padding existed."""
    V2 = p["V_k"] ** 2
    off = V2 == 0
    order = np.argsort(np.where(off, np.inf, p["eps_k"]), axis=1)
    e = np.take_along_axis(np.where(off, 0.0, p["eps_k"]), order, axis=1) / p["D"][:, None]
    v = np.take_along_axis(V2, order, axis=1) / p["D"][:, None] ** 2
    return e, v


def descriptors(params: dict, names) -> tuple[np.ndarray, list[str]]:
    """Descriptor matrix ``X_bf`` and column names for the parameter arrays ``params``.

    ``params`` holds ``U, mu, beta, D`` (b,) and ``eps_k, V_k`` (b, K).  Names
    are keys of :data:`DESCRIPTORS`, ``"bath"`` (``eps_k/D`` sorted and the
    matching ``V_k^2/D^2``) or ``"delta"`` / ``"delta<n>"`` (:func:`delta_size`).
    """
    p = {k: np.atleast_1d(np.asarray(v, float)) for k, v in params.items()}
    for k in ("eps_k", "V_k"):
        if k in p and p[k].ndim == 1:
            p[k] = p[k][None, :]
    cols, labels = [], []
    for name in names:
        if name == "bath":
            e, v = _bath(p)
            for k in range(e.shape[1]):
                cols += [e[:, k], v[:, k]]
                labels += [f"bath_e{k}", f"bath_v{k}"]
        elif name in DESCRIPTORS:
            cols.append(DESCRIPTORS[name][0](p))
            labels.append(name)
        elif delta_size(name):
            d = _delta(p, delta_size(name))
            cols += list(d.T)
            labels += [f"delta_{k}" for k in range(d.shape[1])]
        else:
            raise ValueError(
                f"unknown descriptor {name!r}; available: {', '.join(DESCRIPTORS)}, bath, "
                "delta, delta<n> (e.g. delta40)"
            )
    return np.stack(cols, axis=1) if cols else np.zeros((len(p["U"]), 0)), labels


def ph_image_params(params: dict) -> dict:
    """Particle-hole image of the parameter arrays: ``mu -> U - mu``, ``eps_k -> -eps_k``.

    The other spin's parameters of a spin-resolved row (``mu_o``, ``eps_k_o``, ``V_k_o``,
    ``delta_l_o``; :func:`polarisation_descriptors`) map alike: the map acts on both spins.
    """
    out = dict(params)
    U = np.asarray(params["U"])
    for sfx in ("", "_o"):
        if "mu" + sfx not in params:
            continue
        out["mu" + sfx] = U - np.asarray(params["mu" + sfx])
        out["eps_k" + sfx] = -np.asarray(params["eps_k" + sfx])
        if "delta_l" + sfx in params:  # Delta(tau) -> Delta(beta - tau)
            dl = np.asarray(params["delta_l" + sfx])
            out["delta_l" + sfx] = dl * (-1.0) ** np.arange(dl.shape[-1])
    for key in ("fitres", "fitres_o"):  # the fit residual R -> -conj(R)
        if key in params:
            from .fit_residual import ph_image as _fitres_image

            out[key] = _fitres_image(params[key])
    return out


# -- spin-resolved rows -------------------------------------------------------------
#: The moments of the hybridisation whose spin difference (other spin minus own spin,
#: ``"dm<n>"``) a spin-resolved model's training domain records (:func:`polarisation_ranges`).
POLARISATION_MOMENTS = ("m0", "m1", "m2", "m3")


def is_hybridisation_descriptor(name: str) -> bool:
    """True for the descriptors of the bath (``m0`` ... ``m3``, ``"bath"``, ``"delta"`` /
    ``"delta<n>"``): a spin-resolved row also gets their spin difference."""
    return name in POLARISATION_MOMENTS or name == "bath" or bool(delta_size(name))


def other_spin_params(params: dict) -> dict:
    """The parameter arrays of the *other* spin of spin-resolved rows: ``mu_o``, ``eps_k_o``,
    ``V_k_o`` (and ``delta_l_o``) in place of ``mu``, ``eps_k``, ``V_k`` (``delta_l``)."""
    out = dict(params)
    for k in ("mu", "eps_k", "V_k", "delta_l"):
        out.pop(k + "_o", None)
        if k + "_o" in params:
            out[k] = params[k + "_o"]
        elif k == "delta_l":
            out.pop(k, None)
    return out


def polarisation_descriptors(params: dict, names) -> tuple[np.ndarray, list[str]]:
    """What distinguishes the other spin of spin-resolved rows from the row's own spin.

    ``params`` holds the row's own spin (``mu``, ``eps_k``, ``V_k``, optionally ``delta_l``)
    and the other spin's (``mu_o``, ``eps_k_o``, ``V_k_o``, ``delta_l_o``).  Columns:
    ``"dmu/D"`` = ``(mu_other - mu_own) / D``, then for every hybridisation descriptor of
    ``names`` (:func:`is_hybridisation_descriptor`) its value for the other spin minus
    its value for the own spin (labels ``"d" + label``: ``dm0``, ``dbath_e0``,
    ``ddelta_3``, ...).  A spin-symmetric row (other = own) gives exact zeros; under the
    spin flip the columns change sign, under the particle-hole map they transform as the
    descriptors they are differences of.
    """
    p = {k: np.atleast_1d(np.asarray(v, float)) for k, v in params.items()}
    cols = [(p["mu_o"] - p["mu"]) / p["D"]]
    labels = ["dmu/D"]
    hyb = [n for n in names if is_hybridisation_descriptor(n)]
    if hyb:
        own, own_labels = descriptors(p, hyb)
        other, _ = descriptors(other_spin_params(p), hyb)
        d = other - own
        # spins equal up to rounding (the same sites in another order): exactly 0, so that
        # a column that is 0 on every training row does not get a rounding-size scale
        d[np.abs(d) <= 1e-13 * (np.abs(own) + np.abs(other))] = 0.0
        cols += list(d.T)
        labels += ["d" + lab for lab in own_labels]
    return np.stack(cols, axis=1), labels


def polarisation_ranges(params: dict) -> dict:
    """``{"dmu/D": [min, max], "dm0": [...], ..., "dm3": [...]}`` over spin-resolved rows:
    the polarisations a spin-resolved model was trained on (its ``domain``)."""
    X, labels = polarisation_descriptors(params, POLARISATION_MOMENTS)
    return {n: [float(X[:, j].min()), float(X[:, j].max())] for j, n in enumerate(labels)}
