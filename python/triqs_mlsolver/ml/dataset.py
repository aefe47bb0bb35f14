# SPDX-License-Identifier: Apache-2.0
"""From a database to arrays: samples, features, targets, splits.

The model learns the correction ``Delta G = G_ref - G_base`` of one cheap
solver (``base``) from the Green's functions of one or several cheap
solvers (``inputs``, stacked) and scalar descriptors.  All functions are in
a :class:`~triqs_mlsolver.ml.representations.Representation` (dimensionless).

Feature layout (``input_mode``)
-------------------------------
``"absolute"``
    ``y_k`` for every input solver ``k`` (the seed's stacked solvers).
``"difference"``
    ``y_base`` and ``y_k - y_base`` for the other inputs.
``"shape"`` (default)
    ``y_base``; for every other input ``(y_k - y_base) / s_k`` and
    ``log10 s_k``, with ``s_k = ||y_k - y_base||`` (the ``L2(0, 1)`` norm of
    :meth:`Representation.metric`).  The disagreement between solvers spans
    eight decades over the database (ED-2 vs ED-3: ``1e-6`` at ``beta = 1``,
    ``1e-2`` at ``beta = 50``); its shape and its logarithmic size are both
    O(1) numbers a network handles well.

Target scaling (``target_scale``)
---------------------------------
With ``target_scale = k`` the target is ``Delta y / s_k`` (the correction in
units of the disagreement of solver ``k`` with the base; ``None``: no
scaling).  The mean-square loss is then a relative one and every temperature
counts, not only the large errors at low temperature.  ``s_k`` is known at
inference, so the prediction is ``y_base + s_k * net(...)``.

Self-energy target (config ``target = "sigma"``, field ``sigma``)
-----------------------------------------------------------------
With a :class:`~triqs_mlsolver.ml.representations.SigmaTarget` the inputs stay in
the representation, but the target is the self-energy correction
``(Sigma_ref - Sigma_base)(i w_n) / (i w_n)`` at the first ``N`` Matsubara
frequencies, decoded to G by Dyson's equation.  ``target_scale = "dyson"``
divides it by ``beta / (w_n |G_base(i w_n)|^2)`` (per sample and frequency), so
that the loss measures the G error the correction makes (see ``SigmaTarget``).

Samples are spin-averaged unless the model is spin-resolved (below): a
spin-symmetric model treats spin-symmetric AIMs only.  A database of
format 4 may hold spin-polarised samples (``Database.polarised``): :func:`load_samples`
leaves them out and says how many (``SampleSet.polarised_excluded``); the spin
symmetry of the rest is checked.

Spin-resolved rows (``FeatureSpec.spin_resolved``, config ``[features] spin_resolved``)
----------------------------------------------------------------------------------------
One *row* per spin of a spin-polarised sample and one row for a spin-symmetric sample
(both spins equal: not counted twice).  The row of spin ``s`` holds that spin's
functions (``y``, ``G_tau``, ``G_l``) and parameters (``mu``, ``eps_k``, ``V_k``) and the
other spin's (``y_other``; ``params["mu_o"]``, ``["eps_k_o"]``, ``["V_k_o"]``); its target
is the correction of spin ``s``.  The features are the spin-symmetric ones of the own
spin, plus what distinguishes the other spin: the other spin's base function relative to
the own spin's (``"shape"`` inputs: ``d / |d|`` and ``log10(|d| / scale_floor)`` with
``d = y_base^other - y_base^own``; the other modes: ``d``) and
:func:`~triqs_mlsolver.ml.representations.polarisation_descriptors` (``(mu_other -
mu_own)/D`` and the other minus the own spin's hybridisation descriptors).  A
spin-symmetric row has exact zeros there.  No feature says which spin a row is, so the
row of spin down of a sample is the row of spin up of its spin-flipped image: the
prediction is spin-flip equivariant by construction.  The particle-hole image of a row
maps both spins (:meth:`SampleSet.ph_image`).  The parameters of a sample are the legacy
spin-symmetric fields (``U, mu, beta, D``, ``eps_k, V_k`` padded to the database's ``K``
with ``eps_k = V_k = 0``): a padded site has ``V_k = 0`` and changes no descriptor (the
moments and ``Delta_l`` weigh a site by ``V_k^2``; ``"bath"`` puts decoupled sites last
as zeros, :func:`~triqs_mlsolver.ml.representations.descriptors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fit_residual import FIT_RESIDUAL_N, fit_solver, rows_from_database
from .fit_residual import feature_block as fit_residual_block
from .representations import (
    Representation,
    SigmaTarget,
    descriptors,
    ph_image_params,
    polarisation_descriptors,
)

__all__ = ["FeatureSpec", "SampleSet", "load_samples", "add_fit_residuals", "split_indices",
           "INPUT_MODES"]

INPUT_MODES = ("absolute", "difference", "shape")
#: Norms ``|y_k - y_base|`` below this are treated as this in the "shape" inputs and the
#: target scale (solvers that agree far below any accuracy that matters).  Models written
#: before the floor was stored used 1e-13 (LEGACY_SCALE_FLOOR); that made the scaled targets
#: ``(y_ref - y_base)/s`` of samples where two ED solvers agree to rounding as large as
#: 1e6, the affine target standardisation followed them, and the trained model's G(tau)
#: errors were O(1) at a tiny training loss (found in session 3 on the seed database).
SCALE_FLOOR = 1e-6
LEGACY_SCALE_FLOOR = 1e-13


@dataclass
class FeatureSpec:
    """What the model sees and predicts.

    Parameters
    ----------
    representation : Representation
    inputs : list of str
        Cheap solvers whose Green's functions are features (stacked).
    base : str
        The cheap solver whose correction is learned (must be in ``inputs``).
    descriptors : list of str
        Names from :data:`~triqs_mlsolver.ml.representations.DESCRIPTORS` (or ``"bath"``).
    input_mode : {"absolute", "difference", "shape"}
    target_scale : str or None
        Solver ``k`` whose distance to the base scales the target, or ``"dyson"``
        (self-energy target only: :meth:`SigmaTarget.dyson_scale`).
    scale_floor : float
        Smallest norm used for the "shape" inputs and the target scale
        (:data:`SCALE_FLOOR`; stored in the model file).
    sigma : SigmaTarget or None
        None: the target is ``y_ref - y_base`` in ``representation``; a
        :class:`SigmaTarget`: the self-energy correction.
    spin_resolved : bool
        One row per spin (see the module docstring); the samples must then be loaded with
        ``load_samples(..., spin_resolved=True)``.  Stored in the model file only when
        true (files without the key: False).
    fit_residual : list of str
        Fitted-bath ED inputs (``"ed4e"``, ``"ed5e"``, ...) whose fit residual
        ``Delta - Delta_fit`` at the first ``fit_residual_n`` Matsubara frequencies is a
        feature (:mod:`~triqs_mlsolver.ml.fit_residual`); the samples then need
        ``params["fitres"]`` and ``["fitres_o"]`` (:func:`add_fit_residuals`).  Stored in the
        model file only when set.
    fit_residual_n : int
    """

    representation: Representation
    inputs: list
    base: str
    descriptors: list = field(default_factory=list)
    input_mode: str = "shape"
    target_scale: str | None = None
    scale_floor: float = SCALE_FLOOR
    sigma: SigmaTarget | None = None
    spin_resolved: bool = False
    fit_residual: list = field(default_factory=list)
    fit_residual_n: int = FIT_RESIDUAL_N

    def __post_init__(self):
        if not isinstance(self.spin_resolved, (bool, np.bool_)):
            raise ValueError(f"spin_resolved = {self.spin_resolved!r}: give true or false")
        self.spin_resolved = bool(self.spin_resolved)
        if not self.inputs:
            raise ValueError("inputs: give at least one cheap solver")
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"inputs: solver names must be unique, got {self.inputs}")
        if self.base not in self.inputs:
            raise ValueError(
                f"base solver {self.base!r} must be one of the inputs {self.inputs}"
            )
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode {self.input_mode!r}: use one of {INPUT_MODES}")
        if self.target_scale == "dyson":
            if self.sigma is None:
                raise ValueError('target_scale "dyson" scales a self-energy target; use it '
                                 'with target = "sigma"')
        elif self.sigma is not None and self.target_scale is not None:
            raise ValueError(f"target_scale {self.target_scale!r} measures distances of G; "
                             'with a self-energy target use "dyson" or none')
        elif self.target_scale is not None and (
            self.target_scale not in self.inputs or self.target_scale == self.base
        ):
            raise ValueError(
                f"target_scale {self.target_scale!r} must be an input solver other than the "
                f"base {self.base!r} (or none)"
            )
        descriptors({k: np.ones(1) for k in ("U", "mu", "beta", "D")}
                    | {"eps_k": np.ones((1, 1)), "V_k": np.ones((1, 1))}, self.descriptors)
        if isinstance(self.fit_residual, str):
            raise ValueError(f"fit_residual = {self.fit_residual!r}: give a list of solvers, "
                             f"e.g. [{self.fit_residual!r}]")
        self.fit_residual = list(self.fit_residual)
        for s in self.fit_residual:
            fit_solver(s)  # a fitted-bath ED solver, or a ValueError naming it
            if s not in self.inputs:
                raise ValueError(f"fit_residual: {s!r} must be one of the inputs {self.inputs} "
                                 "(its own fit is read from its solution at inference)")
        if len(set(self.fit_residual)) != len(self.fit_residual):
            raise ValueError(f"fit_residual: solver names must be unique, got "
                             f"{self.fit_residual}")
        if (isinstance(self.fit_residual_n, bool) or not isinstance(self.fit_residual_n, int)
                or not 1 <= self.fit_residual_n <= 64):
            raise ValueError(f"fit_residual_n = {self.fit_residual_n!r}: give an integer "
                             "from 1 to 64 (the Matsubara frequencies of the residual)")

    @property
    def others(self) -> list:
        return [s for s in self.inputs if s != self.base]

    def to_dict(self) -> dict:
        return {
            "representation": self.representation.to_dict(),
            "inputs": list(self.inputs),
            "base": self.base,
            "descriptors": list(self.descriptors),
            "input_mode": self.input_mode,
            "target_scale": self.target_scale,
            "scale_floor": self.scale_floor,
            "sigma": None if self.sigma is None else self.sigma.to_dict(),
            # only when set: a spin-symmetric model's file stays as before (and readable by
            # versions that predate the key)
            **({"spin_resolved": True} if self.spin_resolved else {}),
            **({"fit_residual": list(self.fit_residual),
                "fit_residual_n": int(self.fit_residual_n)} if self.fit_residual else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        d = dict(d)
        d["representation"] = Representation.from_dict(d["representation"])
        d.setdefault("scale_floor", LEGACY_SCALE_FLOOR)  # files written before it was stored
        if d.get("sigma") is not None:
            d["sigma"] = SigmaTarget.from_dict(d["sigma"])
        return cls(**d)

    @property
    def out_size(self) -> int:
        """Length of the correction vector (the network's output without gates)."""
        return self.representation.size if self.sigma is None else self.sigma.size

    def describe_target(self) -> str:
        if self.sigma is None:
            return self.representation.describe()
        return self.sigma.describe()

    def target_vector(self, samples: SampleSet, solver: str) -> np.ndarray:
        """``solver``'s function in the target space: its representation vector, or the
        self-energy vector ``y_n`` of :class:`SigmaTarget`."""
        if self.sigma is None:
            return samples.y[solver]
        return self.sigma.encode(samples.G_l[solver], samples.beta)

    # -- features -------------------------------------------------------------
    def function_mask(self, n_features: int) -> np.ndarray:
        """True for the feature components that are Green's-function values.

        The elementwise transform (tanh, ...) acts on these; the scalar
        descriptors and ``log10 s_k`` only get the affine rescaling.
        """
        n = self.representation.size
        if self.input_mode in ("absolute", "difference"):
            blocks = [np.ones(n * len(self.inputs), bool)]
        else:
            blocks = [np.ones(n, bool)] + [np.r_[np.ones(n, bool), False]] * len(self.others)
        if self.spin_resolved:  # the other spin's base function relative to the own spin's
            blocks.append(np.r_[np.ones(n, bool), False] if self.input_mode == "shape"
                          else np.ones(n, bool))
        used = sum(len(b) for b in blocks)
        return np.concatenate(blocks + [np.zeros(n_features - used, bool)])

    def features(self, samples: SampleSet) -> np.ndarray:
        """Raw feature matrix ``X_bf`` (before transforms).

        Layout: the function blocks of ``input_mode``; for a spin-resolved spec the other
        spin's base function relative to the own spin's (module docstring); the
        descriptors; for a spin-resolved spec the polarisation descriptors
        (:func:`~triqs_mlsolver.ml.representations.polarisation_descriptors`)."""
        rep = self.representation
        w = rep.metric()
        yb = samples.y[self.base]
        cols = []
        if self.input_mode == "absolute":
            cols += [samples.y[s] for s in self.inputs]
        else:
            cols.append(yb)
            for s in self.others:
                d = samples.y[s] - yb
                if self.input_mode == "difference":
                    cols.append(d)
                else:
                    nrm = np.maximum(np.sqrt((d**2 * w).sum(axis=1)), self.scale_floor)
                    cols += [d / nrm[:, None], np.log10(nrm)[:, None]]
        if self.spin_resolved:
            self._check_rows(samples)
            d = samples.y_other[self.base] - yb
            if self.input_mode == "shape":
                nrm = np.maximum(np.sqrt((d**2 * w).sum(axis=1)), self.scale_floor)
                # log10(|d| / floor): exactly 0 for a spin-symmetric row, like d / |d|
                cols += [d / nrm[:, None], np.log10(nrm / self.scale_floor)[:, None]]
            else:
                cols.append(d)
        X_desc, _ = descriptors(samples.params, self.descriptors)
        cols.append(X_desc)
        if self.spin_resolved:
            cols.append(polarisation_descriptors(samples.params, self.descriptors)[0])
        if self.fit_residual:
            if "fitres" not in samples.params:
                raise ValueError("the model uses fit-residual features: add them to the "
                                 "samples first (ml.dataset.add_fit_residuals)")
            cols.append(fit_residual_block(samples.params))
        return np.concatenate(cols, axis=1)

    def polarisation_mask(self, n_features: int) -> np.ndarray:
        """True for the feature columns that say how the other spin differs from the own
        spin (a spin-resolved spec: the other spin's base block and the polarisation
        descriptors; all False otherwise).  They are exactly 0 on a spin-symmetric row."""
        from .representations import is_hybridisation_descriptor

        out = np.zeros(n_features, bool)
        if not self.spin_resolved:
            return out
        n = self.representation.size
        fn = (n * len(self.inputs) if self.input_mode != "shape"
              else n + (n + 1) * len(self.others))
        other = n + 1 if self.input_mode == "shape" else n
        rest = n_features - fn - other  # descriptors (plain + h hybridisation columns)
        plain = sum(1 for d in self.descriptors if not is_hybridisation_descriptor(d))
        h = (rest - 1 - plain) // 2  # ... then 1 + h polarisation columns
        out[fn:fn + other] = True
        out[n_features - 1 - h:] = True
        return out

    def _check_rows(self, samples):
        if samples.y_other is None:
            raise ValueError("a spin-resolved model needs spin-resolved rows: load the "
                             "samples with load_samples(..., spin_resolved=True)")

    def scale(self, samples: SampleSet) -> np.ndarray:
        """Target scale: shape (b, 1) per sample (ones without ``target_scale``), or (b, o)
        per sample and component (``"dyson"``)."""
        if self.target_scale is None:
            return np.ones((len(samples), 1))
        if self.target_scale == "dyson":
            return self.sigma.dyson_scale(samples.G_l[self.base], samples.beta)
        d = samples.y[self.target_scale] - samples.y[self.base]
        w = self.representation.metric()
        return np.maximum(np.sqrt((d**2 * w).sum(axis=1)), self.scale_floor)[:, None]

    def target(self, samples: SampleSet, reference: str) -> np.ndarray:
        """Scaled correction ``(y_ref - y_base) / s`` of every sample (in the target space)."""
        return ((self.target_vector(samples, reference) - self.target_vector(samples, self.base))
                / self.scale(samples))


@dataclass
class SampleSet:
    """Encoded samples of a database (or spin-resolved rows of them).

    Attributes
    ----------
    index : ndarray (b,) int, the database sample numbers (PH images keep theirs; the two
        rows of a spin-polarised sample share theirs)
    params : dict of ndarray, ``U, mu, beta, D`` (b,), ``eps_k, V_k`` (b, K); spin-resolved
        rows also ``mu_o`` (b,), ``eps_k_o, V_k_o`` (b, K): the other spin's
    y : dict solver -> ndarray (b, o), the encoded functions (of the row's spin)
    G_tau : dict solver -> ndarray (b, T), spin-averaged stored G(tau) (for evaluation;
        spin-resolved rows: the row's spin)
    G_l : dict solver -> ndarray (b, L), spin-averaged stored G_l (idem)
    x_stored : ndarray (T,), ``tau / beta`` of the stored points
    ph : ndarray (b,) bool, the sample is a particle-hole image
    polarised_excluded : ndarray (p,) int, the database sample numbers :func:`load_samples`
        left out because they are spin-polarised (empty otherwise; not carried over by
        :meth:`subset`, :meth:`ph_image` and :meth:`concatenate`)
    y_other : dict solver -> ndarray (b, o) or None, spin-resolved rows: the other spin's
        encoded functions (None: spin-averaged samples)
    spin : ndarray (b,) int or None, spin-resolved rows: the row's spin (0 up, 1 down; a
        spin-symmetric sample's one row: 0)
    polarised : ndarray (b,) bool or None, spin-resolved rows: the row's sample is
        spin-polarised
    """

    index: np.ndarray
    params: dict
    y: dict
    G_tau: dict
    G_l: dict
    x_stored: np.ndarray
    ph: np.ndarray
    polarised_excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    y_other: dict | None = None
    spin: np.ndarray | None = None
    polarised: np.ndarray | None = None

    def __len__(self):
        return len(self.index)

    @property
    def beta(self) -> np.ndarray:
        return self.params["beta"]

    @property
    def spin_resolved(self) -> bool:
        """The rows are spin-resolved (they carry the other spin: ``y_other``)."""
        return self.y_other is not None

    def _rows(self, y_other, spin, polarised) -> dict:
        if self.y_other is None:
            return {}
        return {"y_other": y_other, "spin": spin, "polarised": polarised}

    def subset(self, sel) -> SampleSet:
        return SampleSet(
            self.index[sel],
            {k: v[sel] for k, v in self.params.items()},
            {k: v[sel] for k, v in self.y.items()},
            {k: v[sel] for k, v in self.G_tau.items()},
            {k: v[sel] for k, v in self.G_l.items()},
            self.x_stored,
            self.ph[sel],
            **self._rows(None if self.y_other is None else
                         {k: v[sel] for k, v in self.y_other.items()},
                         None if self.spin is None else self.spin[sel],
                         None if self.polarised is None else self.polarised[sel]),
        )

    def ph_image(self, rep: Representation) -> SampleSet:
        """The particle-hole images of all samples (``mu -> U-mu``, ``eps_k -> -eps_k``,
        ``G(tau) -> G(beta - tau)``; for spin-resolved rows of both spins)."""
        sign = (-1.0) ** np.arange(next(iter(self.G_l.values())).shape[1])
        return SampleSet(
            self.index.copy(),
            ph_image_params(self.params),
            {k: rep.ph_image(v) for k, v in self.y.items()},
            {k: v[:, ::-1].copy() for k, v in self.G_tau.items()},
            {k: v * sign for k, v in self.G_l.items()},
            self.x_stored,
            ~self.ph,
            **self._rows(None if self.y_other is None else
                         {k: rep.ph_image(v) for k, v in self.y_other.items()},
                         None if self.spin is None else self.spin.copy(),
                         None if self.polarised is None else self.polarised.copy()),
        )

    @staticmethod
    def concatenate(parts) -> SampleSet:
        parts = list(parts)
        p0 = parts[0]
        if len({p.spin_resolved for p in parts}) > 1:
            raise ValueError("cannot concatenate spin-resolved rows and spin-averaged samples")
        rows = {}
        if p0.spin_resolved:
            rows = {"y_other": {k: np.concatenate([p.y_other[k] for p in parts])
                                for k in p0.y_other},
                    "spin": np.concatenate([p.spin for p in parts]),
                    "polarised": np.concatenate([p.polarised for p in parts])}
        return SampleSet(
            np.concatenate([p.index for p in parts]),
            {k: np.concatenate([p.params[k] for p in parts]) for k in p0.params},
            {k: np.concatenate([p.y[k] for p in parts]) for k in p0.y},
            {k: np.concatenate([p.G_tau[k] for p in parts]) for k in p0.G_tau},
            {k: np.concatenate([p.G_l[k] for p in parts]) for k in p0.G_l},
            p0.x_stored,
            np.concatenate([p.ph for p in parts]),
            **rows,
        )

    def sample_count(self) -> int:
        """The number of distinct samples (rows of one sample and its PH image count once
        each: ``(index, ph)`` pairs)."""
        return len(set(zip(self.index.tolist(), self.ph.tolist())))


def load_samples(db, rep: Representation, solvers, indices=None, *,
                 polarised: str = "exclude", spin_resolved: bool = False) -> SampleSet:
    """Read and encode the samples ``indices`` (default: all with every solve ok).

    Spin-polarised samples (``db.polarised``: the spins' ``mu``, ``eps_k`` or ``V_k``
    differ) have no spin-averaged model: ``polarised = "exclude"`` (default) leaves them
    out of ``indices`` and records them in ``SampleSet.polarised_excluded`` (the caller
    reports the count); ``"error"`` refuses them.  ``params`` of the result hold the legacy
    fields ``U, mu, beta, D, eps_k, V_k`` (spin up = both spins for what is kept).

    ``spin_resolved = True`` (a spin-resolved model; ``polarised`` is then not used):
    every sample is kept, as one row per spin if it is spin-polarised and as one row if
    it is spin-symmetric (the legacy fields and the spin-averaged functions, exactly as
    without ``spin_resolved``, and the other spin equal to them), see the module
    docstring.  The rows of a sample follow each other (spin up first).

    Raises ``ValueError`` when a solver is missing, a requested sample failed,
    a kept spin-symmetric sample's Green's functions are not spin symmetric (the model
    treats one spin) or (``polarised = "error"``) a sample is spin-polarised, and
    :class:`~triqs_mlsolver.database.integrity.DatabaseValueError` (a ``ValueError``)
    naming the dataset, the sample and the value when a parameter or a Green's function
    breaks the value rules (non-finite or absurd, see doc/database.rst) -- before any
    training or evaluation sees it.  The database checks its checksums as it reads.
    """
    from ..database.integrity import check_params, check_solver_values
    from ..database.schema import LEGACY_PARAMS

    missing = [s for s in solvers if s not in db.solvers]
    if missing:
        raise ValueError(
            f"{db.path}: solvers {missing} are not in the database (it has {db.solvers})"
        )
    ok = np.ones(len(db), bool)
    for s in solvers:
        ok &= db.read(s, "ok")
    if indices is None:
        indices = np.flatnonzero(ok)
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= len(db)):
        raise ValueError(f"sample indices out of range for {db.path} ({len(db)} samples)")
    bad = indices[~ok[indices]]
    if len(bad):
        raise ValueError(f"samples {bad[:5].tolist()} of {db.path} have a failed solve")
    if polarised not in ("exclude", "error"):
        raise ValueError(f"polarised = {polarised!r}: use 'exclude' or 'error'")
    pol = np.asarray(getattr(db, "polarised", np.zeros(len(db), bool)), bool)
    excluded = indices[pol[indices]]
    if len(excluded) and polarised == "error" and not spin_resolved:
        raise ValueError(f"samples {excluded[:5].tolist()} of {db.path} are spin-polarised "
                         f"({len(excluded)} in all); the ML models treat spin-symmetric AIMs "
                         "only (polarised = 'exclude' leaves them out)")
    # the value rules see every requested sample, the polarised ones too
    check_params({k: np.asarray(v)[indices] for k, v in db.params.items()}, index=indices,
                 file=str(db.path))
    if spin_resolved:
        return _load_rows(db, rep, solvers, indices, pol[indices])
    indices = indices[~pol[indices]]
    params = {k: np.asarray(db.params[k])[indices].astype(float) for k in LEGACY_PARAMS}
    beta = params["beta"]
    y, Gt, Gl = {}, {}, {}
    for s in solvers:
        t = db.read(s, "G_tau")[indices]
        l = db.read(s, "G_l")[indices]
        check_solver_values(s, {"G_tau": t, "G_l": l}, beta, index=indices, file=str(db.path))
        _check_spin_symmetric(db, s, t)
        Gt[s] = t.mean(axis=1)
        Gl[s] = l.mean(axis=1)
        y[s] = rep.encode(Gt[s], Gl[s], beta, db.tau_over_beta)
    return SampleSet(indices, params, y, Gt, Gl, np.asarray(db.tau_over_beta),
                     np.zeros(len(indices), bool), polarised_excluded=excluded)


def add_fit_residuals(samples: SampleSet, db, spec: FeatureSpec) -> SampleSet:
    """``samples`` (read from ``db`` by :func:`load_samples`) with the fit-residual
    parameters ``"fitres"``, ``"fitres_o"`` the ``spec`` needs (unchanged without
    ``spec.fit_residual``): each sample's fits made again as at generation
    (:mod:`~triqs_mlsolver.ml.fit_residual`).  Particle-hole images are not allowed here:
    add the residuals before :meth:`SampleSet.ph_image` (which maps them)."""
    if not spec.fit_residual:
        return samples
    if samples.ph.any():
        raise ValueError("add_fit_residuals: give the database's own rows (not their "
                         "particle-hole images; ph_image maps the residuals)")
    samples.params.update(rows_from_database(db, samples.index, samples.spin,
                                             spec.fit_residual, spec.fit_residual_n))
    return samples


def _check_spin_symmetric(db, solver, G_nst):
    asym = np.abs(G_nst[:, 0] - G_nst[:, 1]).max() if len(G_nst) else 0.0
    if asym > 1e-8:
        raise ValueError(
            f"{db.path}: solver {solver} has spin-polarised samples (|G_up - G_dn| = "
            f"{asym:.2g}); the ML models treat spin-symmetric problems only"
        )


def _load_rows(db, rep, solvers, indices, pol) -> SampleSet:
    """The spin-resolved rows of ``indices`` (``pol``: which are polarised), see
    :func:`load_samples`."""
    from ..database.integrity import check_solver_values
    from ..database.schema import LEGACY_PARAMS

    n_rows = 1 + pol.astype(np.int64)
    pos = np.repeat(np.arange(len(indices)), n_rows)  # the row's sample, in ``indices``
    spin = np.zeros(len(pos), np.int64)
    spin[(np.cumsum(n_rows) - n_rows)[pol] + 1] = 1  # the second row of a polarised one
    rpol = pol[pos]
    row = np.arange(len(pos))
    idx = indices[pos]
    P = db.params
    params = {k: np.asarray(P[k])[idx].astype(float) for k in LEGACY_PARAMS}
    # polarised rows: the row's spin; spin-symmetric rows keep the legacy fields
    for k, ks in (("mu", "mu_s"), ("eps_k", "eps_k_s"), ("V_k", "V_k_s")):
        a = np.asarray(P[ks])[idx].astype(float)
        own, other = a[row, spin], a[row, 1 - spin]
        params[k] = np.where(rpol.reshape((-1,) + (1,) * (own.ndim - 1)), own, params[k])
        params[k + "_o"] = np.where(rpol.reshape((-1,) + (1,) * (own.ndim - 1)), other,
                                    params[k])
    beta = params["beta"]
    y, yo, Gt, Gl = {}, {}, {}, {}
    for s in solvers:
        t = db.read(s, "G_tau")[indices]
        l = db.read(s, "G_l")[indices]
        check_solver_values(s, {"G_tau": t, "G_l": l}, np.asarray(P["beta"])[indices],
                            index=indices, file=str(db.path))
        _check_spin_symmetric(db, s, t[~pol])
        t, l = t[pos], l[pos]
        sym = ~rpol[:, None]
        Gt[s] = np.where(sym, t.mean(axis=1), t[row, spin])
        Gl[s] = np.where(sym, l.mean(axis=1), l[row, spin])
        Gt_o = np.where(sym, Gt[s], t[row, 1 - spin])
        Gl_o = np.where(sym, Gl[s], l[row, 1 - spin])
        y[s] = rep.encode(Gt[s], Gl[s], beta, db.tau_over_beta)
        yo[s] = np.where(sym, y[s], rep.encode(Gt_o, Gl_o, beta, db.tau_over_beta))
    return SampleSet(idx, params, y, Gt, Gl, np.asarray(db.tau_over_beta),
                     np.zeros(len(idx), bool), y_other=yo, spin=spin, polarised=rpol)


def split_indices(candidates, *, test_fraction=0.1, validation_fraction=0.1, seed=0):
    """Random split of sample numbers into train / validation / test.

    The rule (recorded in the model file): a permutation of the sorted
    ``candidates`` by ``numpy.random.default_rng(seed)``; the first
    ``round(test_fraction * n)`` are the test split, the next
    ``round(validation_fraction * (n - n_test))`` the validation split (carved
    out of the training part), the rest train.  Returns sorted index arrays.
    """
    c = np.sort(np.asarray(candidates, dtype=np.int64))
    for name, f in (("test_fraction", test_fraction), ("validation_fraction",
                                                        validation_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name}={f}: expected a fraction in [0, 1)")
    perm = np.random.default_rng(seed).permutation(len(c))
    n_test = int(round(test_fraction * len(c)))
    n_val = int(round(validation_fraction * (len(c) - n_test)))
    test = np.sort(c[perm[:n_test]])
    val = np.sort(c[perm[n_test : n_test + n_val]])
    train = np.sort(c[perm[n_test + n_val :]])
    if len(train) == 0:
        raise ValueError(f"no training samples left of {len(c)}: lower the fractions")
    return train, val, test
