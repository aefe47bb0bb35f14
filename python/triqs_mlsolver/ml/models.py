# SPDX-License-Identifier: Apache-2.0
"""Correction models: fully connected networks (and any regressor) behind one pipeline.

A prediction runs

1. features ``X_bf`` of the cheap solvers and descriptors
   (:meth:`FeatureSpec.features <triqs_mlsolver.ml.dataset.FeatureSpec.features>`),
2. the input transform (elementwise T, affine; fitted on the training set),
3. the regressor (an ensemble of :func:`build_mlp` networks; ridge or kernel
   ridge for the baselines).  With ``head = "gated"`` each network has
   ``o + K`` outputs ``(r, g)`` and predicts ``r + sum_k g_k d_k``, with
   ``d_k`` the correction the ``k``-th other input proposes (its difference
   to the base, :func:`gate_inputs`): where one cheap solver is nearly exact
   (IPT at small U) the network only has to learn the weight ``g_k = 1``, not
   the function itself -- the seed lecture's "combining approximations
   obtained from different limits",
4. the inverse target transform and the per-sample scale: the correction
   ``Delta y_bo`` in the representation,
5. the constraint ``Delta G(0+) + Delta G(beta-) = 0`` enforced exactly by
   :func:`~triqs_mlsolver.ml.representations.constraint_projection`
   (the cheap solvers satisfy ``G(0+) + G(beta-) = -1`` to 1e-11, so the
   corrected G does too),
6. optionally (``symmetrize``) the same for the particle-hole image of the
   sample, mapped back and averaged: the prediction is then exactly
   particle-hole covariant, and at half filling with a symmetric bath exactly
   symmetric,
7. optionally (``shrink = c > 0``, ensembles) the mean correction of a sample is
   multiplied by ``max(0, 1 - c var / |mean|^2)`` (``var`` the ensemble variance of the
   mean, summed over tau): where the members disagree more than the correction is
   large -- typically where the base is already nearly exact -- the base is kept,
8. ``G = G_base + decode(Delta y)`` on the stored tau grid and, with ``clip``,
   the projection onto ``{G <= 0, G(0) + G(beta) = -1}``
   (:func:`~triqs_mlsolver.ml.representations.project_tau_physical`; it
   cannot increase the error because the exact G lies in that convex set).

The ensemble's members differ by their random seed; the spread (standard
deviation over members) is returned with every prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import FeatureSpec, SampleSet
from .representations import Transform, constraint_projection, project_tau_physical

__all__ = [
    "ACTIVATIONS",
    "PRESETS",
    "build_mlp",
    "gate_inputs",
    "gated_output",
    "Prediction",
    "CorrectionPipeline",
    "CorrectionModel",
]


def _activations():
    import torch.nn as nn

    return {
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "elu": nn.ELU,
        "softplus": nn.Softplus,
        "sigmoid": nn.Sigmoid,
    }


#: Activation names accepted by :func:`build_mlp`.
ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "elu", "softplus", "sigmoid")


def _softplus(x):  # torch's Softplus (beta 1, threshold 20)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _np_activations():
    from scipy.special import erf, expit

    return {
        "tanh": np.tanh,
        "relu": lambda x: np.maximum(x, 0.0),
        "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),  # torch's exact GELU
        "silu": lambda x: x * expit(x),
        "elu": lambda x: np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0))),
        "softplus": _softplus,
        "sigmoid": expit,
    }


#: The activations in numpy, for inference on stacked ensemble weights
#: (:meth:`CorrectionModel._members`); equal to torch's to rounding (tested).
_NUMPY_ACTIVATIONS = _np_activations()

#: Named settings.  ``"seed"``: the network of the seed lecture (Sheridan et al.
#: 2021): 2 hidden layers of 51 tanh units, Adam with learning rate 2e-4,
#: batch 8, G(tau) on an adaptive mesh of 51 points, a 90/10 split.
PRESETS = {
    "seed": {
        "model": {"depth": 2, "width": 51, "activation": "tanh"},
        "training": {"lr": 2e-4, "batch_size": 8},
        "features": {"kind": "tau", "n": 51, "mesh": "adaptive"},
        "data": {"test_fraction": 0.1},
    },
}


def build_mlp(n_in: int, n_out: int, *, depth: int, width: int, activation: str,
              dtype="float64"):
    """``depth`` hidden layers of ``width`` units with ``activation``, linear output.

    Parameter names are ``layers.<i>.weight`` / ``layers.<i>.bias`` (a
    ``torch.nn.Sequential`` called ``layers``).
    """
    import torch
    import torch.nn as nn

    acts = _activations()
    if activation not in acts:
        raise ValueError(f"activation {activation!r}: use one of {ACTIVATIONS}")
    for name, v, lo in (("depth", depth, 0), ("width", width, 1), ("n_in", n_in, 1),
                        ("n_out", n_out, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r}: expected an integer >= {lo}")
    mods, d = [], n_in
    for _ in range(depth):
        mods += [nn.Linear(d, width), acts[activation]()]
        d = width
    mods.append(nn.Linear(d, n_out))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(*mods)

        def forward(self, x):
            return self.layers(x)

    return MLP().to(getattr(torch, dtype))


def gate_inputs(spec, samples, target_transform) -> np.ndarray:
    """The corrections the other inputs propose, ``(y_k - y_base) / s`` for
    ``k`` in ``spec.others``, divided by the target transform's scale: shape (b, K, o)."""
    s = spec.scale(samples)
    scale = np.asarray(target_transform.scale, float)
    yb = spec.target_vector(samples, spec.base)
    return np.stack([(spec.target_vector(samples, k) - yb) / s / scale for k in spec.others],
                    axis=1)


def gated_output(out, gates):
    """Gated head: the network's ``o + K`` outputs ``(r, g)`` give ``r + sum_k g_k d_k`` with
    ``d_k = gates[:, k]`` (torch tensors; ``out`` (b, o + K), ``gates`` (b, K, o))."""
    K = gates.shape[1]
    o = out.shape[1] - K
    return out[:, :o] + (out[:, o:, None] * gates).sum(dim=1)


@dataclass
class Prediction:
    """Corrected Green's functions of a batch of rows (spin-averaged samples, both spins
    equal; or spin-resolved rows, one spin each: :class:`~triqs_mlsolver.ml.dataset.SampleSet`).

    Attributes
    ----------
    dy : ndarray (b, o), the predicted correction in the representation (target space)
    G_tau : ndarray (b, T), G on the stored tau grid ``x_stored``
    G_tau_spread : ndarray (b, T), ensemble standard deviation (zeros for one member)
    dy_members : ndarray (K, b, o) or None, every member's correction (needed for a
        self-energy target, whose decoding is not linear: G is the members' mean G)
    factor : ndarray (b,) or None, the shrinkage factor applied to the mean correction
        (None: 1)
    """

    dy: np.ndarray
    G_tau: np.ndarray
    G_tau_spread: np.ndarray
    dy_members: np.ndarray | None = None
    factor: np.ndarray | None = None

    def G_l(self, samples: SampleSet, spec: FeatureSpec, n_l: int) -> np.ndarray:
        """``G_l = G_l^base + decode(Delta y)``, shape (b, n_l)."""
        base = samples.G_l[spec.base][:, :n_l]
        if spec.sigma is None:
            return base + spec.representation.decode_legendre(self.dy, samples.beta, n_l)
        K, b, o = self.dy_members.shape
        Gl_b = samples.G_l[spec.base]
        dGl = spec.sigma.decode_legendre(self.dy_members.reshape(K * b, o),
                                          np.tile(Gl_b, (K, 1)), np.tile(samples.beta, K),
                                          n_l)
        dGl = dGl.reshape(K, b, n_l).mean(axis=0)
        return base + (dGl if self.factor is None else self.factor[:, None] * dGl)


class CorrectionPipeline:
    """Transforms + regressor + constraints (see the module docstring).

    Subclasses implement :meth:`_members` (the regressor outputs in the
    transformed target space, one per ensemble member).

    Attributes
    ----------
    spec : FeatureSpec
    reference : str, the solver the corrections lead to
    input_transform, target_transform : Transform
    symmetrize, clip : bool
    shrink : float, the constant ``c`` of the ensemble shrinkage (0: off)
    """

    kind = "pipeline"

    def __init__(self, spec: FeatureSpec, reference: str, input_transform: Transform,
                 target_transform: Transform, *, symmetrize=False, clip=True, shrink=0.0):
        self.spec = spec
        self.reference = reference
        self.input_transform = input_transform
        self.target_transform = target_transform
        self.symmetrize = bool(symmetrize)
        self.clip = bool(clip)
        self.shrink = float(shrink)

    def _members(self, Z_bf, gates=None) -> np.ndarray:  # (K, b, o)
        raise NotImplementedError

    #: Regressor head: ``"plain"`` or ``"gated"`` (see :class:`CorrectionModel`).
    head = "plain"

    def gate_inputs(self, samples: SampleSet):
        """``(y_k - y_base)/(s * scale_T)`` of every other input, shape (b, K, o), for a gated
        head (None otherwise): the corrections the inputs themselves propose, in the units
        of the transformed target."""
        if self.head != "gated":
            return None
        return gate_inputs(self.spec, samples, self.target_transform)

    def n_features(self) -> int:
        return len(self.input_transform.shift)

    def check_features(self, X_bf):
        if X_bf.shape[1] != self.n_features():
            from .modelfile import ModelMismatchError

            raise ModelMismatchError(
                f"the data give {X_bf.shape[1]} features but the model was trained with "
                f"{self.n_features()} (representation {self.spec.representation.describe()}, "
                f"inputs {self.spec.inputs}, descriptors {self.spec.descriptors}); the "
                "database does not match the model (e.g. another number of bath sites)"
            )

    def correction_members(self, samples: SampleSet) -> np.ndarray:
        """Constrained corrections of every member, shape (K, b, o)."""
        rep = self.spec.representation
        X = self.spec.features(samples)
        self.check_features(X)
        T = self._members(self.input_transform.forward(X), self.gate_inputs(samples))
        s = self.spec.scale(samples)
        dy = np.stack([self.target_transform.inverse(t) * s for t in T])
        if self.spec.sigma is not None:  # the Dyson decoding keeps the sum rule exactly
            return dy
        a = rep.constraint()
        w = None if rep.kind == "tau" else rep.metric()
        return np.stack([constraint_projection(d, a, 0.0, w) for d in dy])

    def predict(self, samples: SampleSet) -> Prediction:
        """Corrected G of every sample (see the module docstring)."""
        rep = self.spec.representation
        dy = self.correction_members(samples)
        if self.symmetrize:
            img = samples.ph_image(rep)
            dy_img = self.correction_members(img)
            img_map = rep.ph_image if self.spec.sigma is None else self.spec.sigma.ph_image
            dy = 0.5 * (dy + img_map(dy_img))
        x = samples.x_stored
        base = samples.G_tau[self.spec.base]
        K, b, o = dy.shape
        if self.spec.sigma is None:
            # decode is linear: one call for all members, the mean decodes to the mean
            dG_k = rep.decode_tau(dy.reshape(K * b, o), x).reshape(K, b, -1)
        else:  # Dyson's equation with the base's G(i w_n)
            Gl_b = samples.G_l[self.spec.base]
            dG_k = self.spec.sigma.decode_tau(dy.reshape(K * b, o), np.tile(Gl_b, (K, 1)),
                                               np.tile(samples.beta, K), x).reshape(K, b, -1)
        G_k = base + dG_k
        if self.clip:
            G_k = project_tau_physical(G_k.reshape(K * b, -1)).reshape(K, b, -1)
        dy_mean = dy.mean(axis=0)
        dG = dG_k.mean(axis=0)
        factor = None
        if self.shrink > 0 and K > 1:
            var_mean = dG_k.var(axis=0, ddof=1).sum(axis=1) / K
            factor = np.clip(1.0 - self.shrink * var_mean
                             / np.maximum((dG**2).sum(axis=1), 1e-300), 0.0, 1.0)
            dG = factor[:, None] * dG
            dy_mean = factor[:, None] * dy_mean
        G = base + dG
        if self.clip:
            G = project_tau_physical(G)
        spread = G_k.std(axis=0) if len(G_k) > 1 else np.zeros_like(G)
        return Prediction(dy_mean, G, spread, dy, factor)

    # -- description for model files ------------------------------------------
    def pipeline_dict(self) -> dict:
        return {
            "feature_spec": self.spec.to_dict(),
            "reference": self.reference,
            "transforms": {
                "input": self.input_transform.to_dict(),
                "target": self.target_transform.to_dict(),
            },
            "options": {"symmetrize": self.symmetrize, "clip": self.clip,
                        "shrink": self.shrink},
        }


class CorrectionModel(CorrectionPipeline):
    """An ensemble of fully connected networks (see :func:`build_mlp`).

    Attributes
    ----------
    nets : list of torch.nn.Module
    architecture : dict, ``depth, width, activation, n_in, n_out, dtype``
    """

    kind = "mlp"

    def __init__(self, spec, reference, input_transform, target_transform, nets, architecture,
                 **options):
        super().__init__(spec, reference, input_transform, target_transform, **options)
        self.nets = list(nets)
        self.architecture = dict(architecture)

    @property
    def head(self):
        return self.architecture.get("head", "plain")

    def _stacked(self):
        """The members' weights stacked for numpy (``[(W (K, in, out), b (K, 1, out)), ...]``,
        the activation), or ``None`` where the torch path is needed (a member on another
        device, another structure or dtype).  Cached; the cache is keyed by every parameter's
        identity and version, so training (in-place updates) and parameters assigned anew
        invalidate it.  The parameters are read through their modules' ``_parameters``
        slots, listed once per set of member networks: walking ``net.parameters()`` on
        every call cost 0.6 ms of a 20 ms solve."""
        import torch

        nets_key = tuple(map(id, self.nets))
        slots = getattr(self, "_param_slots", None)
        if slots is None or slots[0] != nets_key:
            slots = (nets_key, [(m, name) for net in self.nets for m in net.modules()
                                for name, q in m._parameters.items() if q is not None])
            self._param_slots = slots
        params = [m._parameters[name] for m, name in slots[1]]
        key = tuple((id(p), p._version) for p in params)
        cached = getattr(self, "_stack_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        act = self.architecture.get("activation")
        stack = None
        if (act in _NUMPY_ACTIVATIONS and all(p.device.type == "cpu" for p in params)
                and all(p.dtype == torch.float64 for p in params)
                and all(hasattr(n, "layers") for n in self.nets)):
            lins = [[m for m in n.layers if isinstance(m, torch.nn.Linear)] for n in self.nets]
            n_act = [sum(not isinstance(m, torch.nn.Linear) for m in n.layers)
                     for n in self.nets]
            if all(len(ls) == len(lins[0]) == k + 1 for ls, k in zip(lins, n_act)):
                stack = [(np.stack([ls[j].weight.detach().numpy().T for ls in lins]),
                          np.stack([ls[j].bias.detach().numpy() for ls in lins])[:, None, :])
                         for j in range(len(lins[0]))]
                stack = (stack, _NUMPY_ACTIVATIONS[act])
        self._stack_cache = (key, stack)
        return stack

    def _members(self, Z_bf, gates=None):
        import torch

        fast = self._stacked()
        if fast is not None:  # numpy on the stacked weights: ~0.2 ms for 8 members, not ~1 ms
            layers, act = fast
            h = np.broadcast_to(np.asarray(Z_bf, float), (len(self.nets), *np.shape(Z_bf)))
            for j, (W, b) in enumerate(layers):
                h = np.matmul(h, W) + b
                if j < len(layers) - 1:
                    h = act(h)
            if self.head == "gated":
                g = np.asarray(gates, float)
                o = h.shape[2] - g.shape[1]
                h = h[:, :, :o] + (h[:, :, o:, None] * g[None]).sum(axis=2)
            return h
        dtype = getattr(torch, self.architecture.get("dtype", "float64"))
        out = []
        with torch.no_grad():
            z = torch.as_tensor(np.ascontiguousarray(Z_bf), dtype=dtype)
            g = None if gates is None else torch.as_tensor(np.ascontiguousarray(gates),
                                                           dtype=dtype)
            for net in self.nets:
                if net.training:  # eval() walks every submodule: only when needed
                    net.eval()
                dev = next(net.parameters()).device
                y = net(z.to(dev))
                if self.head == "gated":
                    y = gated_output(y, g.to(dev))
                out.append(y.cpu().double().numpy())
        return np.stack(out)

    def state_tensors(self) -> dict:
        """``{"member<k>.<param>": ndarray}`` of every member (for the model file)."""
        out = {}
        for k, net in enumerate(self.nets):
            for name, t in net.state_dict().items():
                out[f"member{k}.{name}"] = t.detach().cpu().numpy()
        return out

    @classmethod
    def from_tensors(cls, spec, reference, input_transform, target_transform, architecture,
                     tensors: dict, n_members: int, **options) -> CorrectionModel:
        import torch

        a = architecture
        nets = []
        for k in range(n_members):
            net = build_mlp(a["n_in"], a["n_out"] + int(a.get("n_gates", 0)), depth=a["depth"],
                            width=a["width"], activation=a["activation"],
                            dtype=a.get("dtype", "float64"))
            prefix = f"member{k}."
            sd = {n[len(prefix):]: torch.from_numpy(np.array(v)) for n, v in tensors.items()
                  if n.startswith(prefix)}
            want = net.state_dict()
            if set(sd) != set(want) or any(tuple(sd[n].shape) != tuple(want[n].shape)
                                           for n in want):
                from .modelfile import ModelFormatError

                raise ModelFormatError(
                    f"the weights of member {k} do not match the architecture in the metadata "
                    f"({a}); the file is inconsistent or corrupt"
                )
            net.load_state_dict(sd)
            net.eval()
            nets.append(net)
        return cls(spec, reference, input_transform, target_transform, nets, architecture,
                   **options)
