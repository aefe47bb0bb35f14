# SPDX-License-Identifier: Apache-2.0
"""``triqs.plot.mpl_interface``: ``oplot`` of Green's functions on matplotlib.

The light layer's version of TRIQS 3.2's plotting interface (this package's code, the
same conventions)::

    from triqs.plot.mpl_interface import oplot, plt
    oplot(G_iw['up'], '-o', x_window=(0, 10), name='G', mode='I')
    fig, ax = plt.subplots(); ax.oplot(G_tau, name='G')   # Axes.oplot, as TRIQS adds it
    plt.savefig('G.png')

``oplot(obj, *fmt, **options)`` draws on the current figure (``num=`` picks another)
one curve per target element ``i, j`` and per part (``'Re '`` and ``'Im '``), labelled
``"Re G 0_0"`` and so on, with TRIQS's axis labels.  Objects:

* ``Gf`` on ``MeshImFreq`` (x = ω_n), ``MeshImTime`` (x = τ), ``MeshLegendre``
  (x = l) and ``BlockGf`` (every block);
* a callable ``f(x)`` (``n_points`` samples over ``x_window``, or the present
  x limits);
* an iterable of ``(x, y)`` pairs.

The options TRIQS reads are ``name`` (label; default the object's ``name``), ``mode``
(``'R'`` real part only, ``'I'`` imaginary part only; ``'S'``, the spectral
function, is for real-frequency Gfs, which the light layer does not have),
``x_window=(xmin, xmax)``, ``n_points`` (callables), ``legend`` (default True) and
``num``; every other keyword goes to ``matplotlib.pyplot.plot``.

matplotlib is imported when one of the served names is first used (through the
module's ``__getattr__``), not when ``triqs-mlsolver run`` starts; that first use also
adds ``oplot`` to ``matplotlib.axes.Axes``, as TRIQS does.  ``oplotr`` and ``oploti``
are deprecated in TRIQS and warn as they do there.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np

from ..gf import BlockGf, Gf, MeshImFreq, MeshImTime, MeshLegendre

_MPL_NAMES = ("plt", "oplot", "oploti", "oplotr", "subplots")

#: ``{TRIQS module: names served there}`` (see :mod:`triqs_mlsolver.light`).
SERVED = {"triqs.plot": (), "triqs.plot.mpl_interface": _MPL_NAMES,
          "pytriqs.plot": (), "pytriqs.plot.mpl_interface": _MPL_NAMES}

#: Served names that the ``run`` facades resolve only when a script uses them.
RESOLVE_ON_ACCESS = _MPL_NAMES

__all__ = ["plot_curves"]


def __getattr__(name):
    """``plt``, ``subplots`` and the ``oplot`` functions, matplotlib being set up first."""
    if name in _MPL_NAMES:
        plt = _pyplot()
        return {"plt": plt, "subplots": plt.subplots, "oplot": _oplot, "oplotr": _oplotr,
                "oploti": _oploti}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _pyplot():
    """``matplotlib.pyplot``, with ``Axes.oplot`` added (once)."""
    import matplotlib.axes
    import matplotlib.pyplot as plt

    if not hasattr(matplotlib.axes.Axes, "oplot"):
        def oplot(self, obj, *opt_list, **opt_dict):
            """Plot a TRIQS object on these axes (``triqs.plot.mpl_interface.oplot``)."""
            _draw(self, self.set_xlabel, self.set_ylabel, self.legend, self.set_title,
                  self.set_xticks, obj, opt_list, opt_dict)

        matplotlib.axes.Axes.oplot = oplot
    return plt


# ---------------------------------------------------------------------------
#  the plot protocol: object -> list of curves
# ---------------------------------------------------------------------------
def _window(x, x_window):
    """The slice of the sorted ``x`` inside ``[xmin, xmax]``."""
    if not x_window:
        return slice(None)
    xmin, xmax = x_window
    if xmax < xmin:
        raise ValueError(f"x_window={tuple(x_window)} must be (xmin, xmax) with xmin <= xmax")
    return slice(int(np.searchsorted(x, xmin, side="left")),
                 int(np.searchsorted(x, xmax, side="right")))


_GF_AXES = {  # mesh type: (x values of a mesh, xlabel, ylabel with the name)
    MeshImFreq: (lambda m: m.values().imag, r"$\omega_n$", r"%s$(i\omega_n)$"),
    MeshImTime: (lambda m: m.values(), r"$\tau$", r"%s$(\tau)$"),
    MeshLegendre: (lambda m: np.arange(len(m)), r"$l_n$", r"%s$(l_n)$"),
}


def _gf_curves(g, opt):
    kind = next((k for k in _GF_AXES if isinstance(g.mesh, k)), None)
    if kind is None:
        raise TypeError(f"oplot cannot plot a Gf on {g.mesh!r}")
    xs, xlabel, ylabel = _GF_AXES[kind]
    name = opt.pop("name", g.name)
    x = np.asarray(xs(g.mesh), dtype=float)
    sl = _window(x, opt.pop("x_window", None))
    mode = opt.pop("mode", "")
    parts = {"": [("Re ", np.real), ("Im ", np.imag)], "R": [("Re ", np.real)],
             "I": [("Im ", np.imag)]}
    if mode == "S":
        raise ValueError("Cannot measure the spectral function for this type of Green's "
                         "function (mode='S' is for real-frequency Gfs); use mode='I'")
    if mode not in parts:
        raise ValueError(f"The 'mode' flag is meaningless. Expected 'R', 'I', or 'S' and got "
                         f"{mode!r}")
    shape = g.target_shape
    curves = []
    for prefix, part in parts[mode]:
        # TRIQS's order and label: target indices reversed, e.g. "Re G 0_0"
        for ind in itertools.product(*map(range, reversed(shape))):
            index = tuple(reversed(ind))
            curves.append({"xlabel": xlabel, "ylabel": ylabel % name, "xdata": x[sl],
                           "label": f"{prefix}{name} {'_'.join(map(str, index))}",
                           "ydata": part(g.data[(sl, *index)])})
    for c in curves:
        c.update(opt)  # everything else goes to matplotlib (a user 'label' wins)
    return curves


def _block_curves(bg, opt):
    curves = []
    for _, g in bg:
        curves += _gf_curves(g, dict(opt))
    name = opt.get("name", bg.name)
    first = bg[bg.block_names[0]].name
    ylabel = curves[0]["ylabel"].replace(first, name) if first else name
    for c in curves:
        c["ylabel"] = ylabel
    return curves


def plot_curves(obj, opt_dict, xlims=None):
    """The curves ``oplot`` draws for ``obj``: a list of dicts with ``xdata``, ``ydata``,
    ``label`` and the matplotlib options (TRIQS's plot protocol).

    ``opt_dict`` is consumed (TRIQS's keys are popped); ``xlims()`` gives the x range of
    a callable without ``x_window``.
    """
    if isinstance(obj, BlockGf):
        return _block_curves(obj, opt_dict)
    if isinstance(obj, Gf):
        return _gf_curves(obj, opt_dict)
    if hasattr(obj, "_plot_"):
        return obj._plot_(opt_dict)
    if callable(obj):
        n_points = opt_dict.pop("n_points", 100)
        window = opt_dict.pop("x_window", None)
        xmin, xmax = window if window else xlims()
        x = np.arange(xmin, xmax, (xmax - xmin) / float(n_points))
        y = np.array([obj(v) for v in x])
    else:
        try:
            x, y = zip(*obj)
        except (TypeError, ValueError):
            raise TypeError(
                f"oplot cannot plot a {type(obj).__name__}: give a Gf, a BlockGf, a function "
                "of x or a sequence of (x, y) pairs") from None
        x, y = np.asarray(x), np.asarray(y)
    name = opt_dict.pop("name", str(obj))
    if np.iscomplexobj(y):
        return [{"xdata": x, "ydata": y.real, "label": "Re " + name},
                {"xdata": x, "ydata": y.imag, "label": "Im " + name}]
    return [{"xdata": x, "ydata": y, "label": name}]


# ---------------------------------------------------------------------------
#  drawing
# ---------------------------------------------------------------------------
_UNKNOWN_OPTION = re.compile(r"unexpected keyword argument '([^']*)'|no property '([^']*)'")


def _draw(target, xlabel_fct, ylabel_fct, legend_fct, title_fct, xticks_fct, obj, opt_list,
          opt_dict):
    plt = _pyplot()
    for curve in plot_curves(obj, dict(opt_dict), plt.xlim):
        plot = getattr(target, curve.pop("plot_function", "plot"))
        x, y = curve.pop("xdata"), curve.pop("ydata")
        for key, fct in (("xlabel", xlabel_fct), ("ylabel", ylabel_fct), ("title", title_fct)):
            value = curve.pop(key, None)
            if value:
                fct(value)
        xticks = curve.pop("xticks", None)
        if xticks:
            xticks_fct(*xticks, rotation=30)
        legend = curve.pop("legend", True)
        try:
            plot(x, y, *opt_list, **curve)
        except (TypeError, AttributeError) as exc:
            m = _UNKNOWN_OPTION.search(str(exc))
            if not m:
                raise
            raise RuntimeError(
                f"Plot option {m.group(1) or m.group(2)!r} not understood: it is neither an "
                "option of the object to be plotted (name, mode, x_window, n_points, legend, "
                "num) nor a matplotlib option") from None
        if legend:
            legend_fct(loc=1)


def _oplot(obj, *opt_list, **opt_dict):
    """Plot ``obj`` (Gf, BlockGf, function, (x, y) pairs) on the current figure.

    TRIQS's ``oplot``: see the module docstring for the options; ``num=`` selects
    the figure.
    """
    plt = _pyplot()
    plt.figure(num=opt_dict.pop("num", plt.gcf().number))
    _draw(plt, plt.xlabel, plt.ylabel, plt.legend, plt.title, plt.xticks, obj, opt_list,
          opt_dict)


def _oplotr(obj, *opt_list, **opt_dict):
    """``oplot(obj, ..., mode='R')`` (deprecated in TRIQS: use ``oplot(G.real, ...)``)."""
    warnings.warn("oplotr is deprecated, use oplot(G.real, ...) instead", DeprecationWarning,
                  stacklevel=2)
    opt_dict["mode"] = "R"
    _oplot(obj, *opt_list, **opt_dict)


def _oploti(obj, *opt_list, **opt_dict):
    """``oplot(obj, ..., mode='I')`` (deprecated in TRIQS: use ``oplot(G.imag, ...)``)."""
    warnings.warn("oploti is deprecated, use oplot(G.imag, ...) instead", DeprecationWarning,
                  stacklevel=2)
    opt_dict["mode"] = "I"
    _oplot(obj, *opt_list, **opt_dict)


_oplot.__name__ = _oplot.__qualname__ = "oplot"
_oplotr.__name__ = _oplotr.__qualname__ = "oplotr"
_oploti.__name__ = _oploti.__qualname__ = "oploti"
