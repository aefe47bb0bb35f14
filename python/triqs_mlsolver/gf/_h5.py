# SPDX-License-Identifier: Apache-2.0
"""``HDFArchive``: read and write HDF5 files in the exact scheme of TRIQS's ``h5`` package.

This is the light layer's replacement for ``h5.HDFArchive`` (TRIQS 3.x/4.x).
Files written here are read by TRIQS and the other way round; the layout is
checked against archives written by TRIQS 3.2.1 in the tests and described in
``doc/hdf5_scheme.rst``.

Usage, as with TRIQS::

    from triqs_mlsolver.gf import HDFArchive
    with HDFArchive("dmft.h5", "w") as ar:          # only on MPI rank 0
        ar["G_iw"] = G_iw                           # BlockGf
        ar["params"] = {"U": 2.0, "beta": 10.0}     # nested containers
    with HDFArchive("dmft.h5", "r") as ar:          # any rank may read
        G_iw = ar["G_iw"]

Layout written for a ``BlockGf`` with blocks ``up``/``down`` on
``MeshImFreq(beta=10, n_iw=16)`` (``@Format`` is a scalar variable-length
UTF-8 string attribute)::

    G_iw/                     group   @Format = "BlockGf"
      block_names/            group   @Format = "List"
        0                     str     "up"      (scalar, vlen UTF-8)
        1                     str     "down"
      up/                     group   @Format = "Gf"
        data                  float64 (32, 1, 1, 2)  @__complex__ = "1"
                                      chunks = shape, gzip level 1
        mesh/                 group   @Format = "MeshImFreq"
          beta                float64 scalar   10.0
          positive_freq_only  int32   scalar   0
          size                int64   scalar   32   (number of points, 2 n_iw)
          statistic           str              "F"  ("B" for bosons)
      down/                   ... as up/

Plain values: ``int`` -> int64 scalar, ``float`` -> float64 scalar, ``bool``
-> HDF5 enum {FALSE=0, TRUE=1} on int8, ``str`` -> vlen UTF-8 scalar,
``complex`` -> float64 ``(2,)`` with ``@__complex__``, numpy arrays ->
chunked (chunk = whole array) gzip-1 datasets of their dtype (complex ones as
``(..., 2)`` reals with ``@__complex__``), numpy scalars keep their dtype,
``list``/``tuple``/``dict`` -> groups ``List``/``Tuple``/``Dict`` whose
entries are named ``"0"``, ``"1"``, ... (lists, tuples) or ``str(key)``.

Writing and MPI: an archive is an ordinary file handle.  Only one process may
open a file for writing; with MPI write on rank 0 only
(``if mpi.is_master_node(): ...``) and read on any rank.  This module never
imports MPI.

Classes of other modules (solvers, models) become storable with
:func:`register_class`; they implement TRIQS's protocol
``__reduce_to_dict__(self) -> dict`` and the classmethod
``__factory_from_dict__(cls, name, d)``.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from collections.abc import Callable

import h5py
import numpy as np

from ..errors import ArchiveFormatError, ArchiveKeyError, ArchiveReadOnlyError
from ._gf import BlockGf, Gf
from ._meshes import MeshImFreq, MeshImTime, MeshLegendre, MeshReFreq, normalize_statistic

__all__ = ["HDFArchive", "HDFArchiveGroup", "register_class"]

_OPEN_FLAGS = {"r": "r", "w": "w", "a": "a"}
_HDF_ARCHIVE_VERSION = 1  # TRIQS's HDFArchive._class_version: files with a larger one are refused
_MAX_CHUNK_BYTES = (1 << 32) - 1  # TRIQS h5 caps a chunk at 4 GiB - 1

_SUPPORTED = (
    "bool, int, float, complex, str; numpy arrays of bool, (unsigned) integers, float32, "
    "float64, complex64 or complex128 and numpy scalars of these types; list, tuple and dict "
    "(nested); Gf, BlockGf, MeshImFreq, MeshImTime, MeshLegendre, MeshReFreq; an "
    "HDFArchiveGroup "
    "(copied); and classes registered with triqs_mlsolver.gf.register_class "
    "(implementing __reduce_to_dict__ and __factory_from_dict__)"
)


# ---------------------------------------------------------------------------
#  Format registry (mirrors h5.formats of TRIQS)
# ---------------------------------------------------------------------------
class _FormatInfo:
    """What the registry knows about one ``Format`` string.

    ``cls`` rebuilds the object with ``__factory_from_dict__`` unless a
    ``read_fun(parent_group, key)`` (public protocol, as in TRIQS) or an
    internal ``reader(_Reader, h5py.Group, _FormatInfo)`` is given.  ``backward_compat``
    maps child names to the Format to use for them (legacy layouts whose
    children carry no or another Format).
    """

    __slots__ = ("name", "cls", "read_fun", "reader", "doc", "backward_compat")

    def __init__(self, name, cls, read_fun=None, reader=None, doc=None, backward_compat=None):
        self.name = name
        self.cls = cls
        self.read_fun = read_fun
        self.reader = reader
        self.doc = doc or ""
        self.backward_compat = dict(backward_compat or {})

    def with_backward_compat(self, mapping):
        return _FormatInfo(self.name, self.cls, self.read_fun, self.reader, self.doc, mapping)


_FORMATS: dict[str, _FormatInfo] = {}
_CLASS_FORMATS: dict[type, str] = {}
# (compiled regex, canonical Format, fun(legacy_format) -> {child name: Format})
_LEGACY_FORMATS: list[tuple[re.Pattern, str, Callable[[str], dict]]] = []


def register_class(cls, *, hdf5_format=None, read_fun=None, doc=None):
    """Make instances of ``cls`` storable in an :class:`HDFArchive` (TRIQS ``h5.formats``).

    The object is written as a group holding the entries of
    ``obj.__reduce_to_dict__()`` with the attribute ``Format = hdf5_format``,
    and rebuilt on reading by ``cls.__factory_from_dict__(key, d)`` (or by
    ``read_fun``), where ``d`` maps the entry names to the values read back.

    Parameters
    ----------
    cls : type
        The class.  It needs ``__reduce_to_dict__`` to be written, and
        ``__factory_from_dict__`` (a classmethod) or ``read_fun`` to be read.
    hdf5_format : str, optional
        The ``Format`` string; default ``cls._hdf5_format_`` if defined, else
        ``cls.__name__`` (as in TRIQS).  Include a version in it when the
        layout may change (e.g. ``"MySolver_v1"``).
    read_fun : callable, optional
        ``read_fun(group, key) -> object`` called instead of
        ``__factory_from_dict__``; ``group`` is the :class:`HDFArchiveGroup`
        holding ``key``.
    doc : str, optional
        A description of the format.

    Raises
    ------
    TypeError
        ``cls`` is not a class, or it can neither be rebuilt
        (no ``__factory_from_dict__`` nor ``read_fun``).
    ValueError
        The Format string is empty, contains ``/``, or is already registered
        for another class.

    Examples
    --------
    >>> class Params:
    ...     _hdf5_format_ = "Params_v1"
    ...     def __init__(self, U): self.U = U
    ...     def __reduce_to_dict__(self): return {"U": self.U}
    ...     @classmethod
    ...     def __factory_from_dict__(cls, name, d): return cls(d["U"])
    >>> register_class(Params)
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_class needs a class, got {cls!r} of type {type(cls).__name__}")
    if read_fun is not None and not callable(read_fun):
        raise TypeError(f"read_fun={read_fun!r} must be callable as read_fun(group, key)")
    if read_fun is None and not hasattr(cls, "__factory_from_dict__"):
        raise TypeError(
            f"{cls.__qualname__} cannot be rebuilt from an archive: define the classmethod "
            "__factory_from_dict__(cls, name, d) or pass read_fun=..."
        )
    fmt = hdf5_format if hdf5_format is not None else getattr(cls, "_hdf5_format_", cls.__name__)
    if not isinstance(fmt, str) or not fmt or "/" in fmt:
        raise ValueError(f"hdf5_format={fmt!r} must be a non-empty string without '/'")
    known = _FORMATS.get(fmt)
    if known is not None:
        if known.cls is cls or (
            known.cls is not None
            and (known.cls.__module__, known.cls.__qualname__) == (cls.__module__, cls.__qualname__)
        ):
            # the same class again (module reloaded): refresh the entry
            known.cls, known.read_fun = cls, read_fun or known.read_fun
            _CLASS_FORMATS[cls] = fmt
            return
        owner = f"{known.cls.__module__}.{known.cls.__qualname__}" if known.cls else "a builtin"
        raise ValueError(
            f"the HDF5 Format {fmt!r} is already registered for {owner}; register "
            f"{cls.__qualname__} under another name with hdf5_format='...'"
        )
    _FORMATS[fmt] = _FormatInfo(fmt, cls, read_fun=read_fun, doc=doc)
    _CLASS_FORMATS[cls] = fmt


def _register_builtin(fmt, cls, reader, doc):
    _FORMATS[fmt] = _FormatInfo(fmt, cls, reader=reader, doc=doc)
    if cls is not None:
        _CLASS_FORMATS[cls] = fmt


def _register_legacy(regex, fmt, fun=lambda s: {}):
    """Read the Formats matching ``regex`` as ``fmt`` (TRIQS's backward-compatibility table)."""
    _LEGACY_FORMATS.append((re.compile(regex), fmt, fun))


def _format_info(fmt) -> _FormatInfo | None:
    """The registry entry for ``fmt``, through the legacy table if needed; None if unknown."""
    info = _FORMATS.get(fmt)
    if info is not None:
        return info
    for regex, canonical, fun in _LEGACY_FORMATS:
        if regex.fullmatch(fmt):
            return _FORMATS[canonical].with_backward_compat(fun(fmt))
    return None


def _format_of_object(val) -> str:
    fmt = getattr(val, "_hdf5_format_", None)
    if isinstance(fmt, str):
        return fmt
    for klass in type(val).__mro__:
        if klass in _CLASS_FORMATS:
            return _CLASS_FORMATS[klass]
    return type(val).__name__


# ---------------------------------------------------------------------------
#  Small helpers
# ---------------------------------------------------------------------------
def _as_str(x) -> str:
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).rstrip(b"\x00").decode("utf-8")
    return str(x)


#: The attribute TRIQS 1.x (``pytriqs.archive``) wrote where TRIQS >= 2.0 writes ``Format``.
_TRIQS1_FORMAT_ATTR = "TRIQS_HDF5_data_scheme"


def _format_attr_name(obj) -> str | None:
    """``'Format'``, or ``'TRIQS_HDF5_data_scheme'`` (TRIQS 1.x) if only that one is there."""
    for name in ("Format", _TRIQS1_FORMAT_ATTR):
        if name in obj.attrs:
            return name
    return None


def _format_attr(obj) -> str | None:
    """The ``Format`` attribute of an HDF5 object, or None when absent or empty.

    Archives of TRIQS 1.x carry the same information as ``TRIQS_HDF5_data_scheme``
    (read when ``Format`` is absent, as TRIQS's ``h5`` does).
    """
    name = _format_attr_name(obj)
    if name is None:
        return None
    raw = obj.attrs[name]
    if isinstance(raw, np.ndarray):
        raw = raw.reshape(-1)[0] if raw.size == 1 else raw
    value = _as_str(raw)
    return value or None


def _check_key(key, context=""):
    """Return ``key`` if it is a valid HDF5 link name; ``context`` says where it comes from."""
    if not isinstance(key, str):
        raise TypeError(
            f"archive keys are strings; got {key!r} of type {type(key).__name__}{context} "
            f"(use str({key!r}))"
        )
    if not key or key in (".", "..") or "/" in key:
        raise ValueError(
            f"{key!r}{context} is not a valid archive key: it must be non-empty, not '.' or "
            "'..', and contain no '/' (to write inside a subgroup use ar['group']['name'] = "
            "value)"
        )
    return key


def _native(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.require(arr, requirements="C")  # keeps 0-d arrays 0-d (ascontiguousarray does not)


def _chunk_shape(shape, itemsize):
    """TRIQS h5's chunk: the whole array, each extent at least 1, capped at 4 GiB."""
    chunk = [1] * len(shape)
    size = itemsize
    for i in range(len(shape) - 1, -1, -1):
        max_dim = max(_MAX_CHUNK_BYTES // size, 1)
        chunk[i] = int(min(max(shape[i], 1), max_dim))
        size *= chunk[i]
    return tuple(chunk)


_REAL_OF_COMPLEX = {
    np.dtype(np.complex64): np.dtype(np.float32),
    np.dtype(np.complex128): np.dtype(np.float64),
}
_COMPLEX_OF_REAL = {v: k for k, v in _REAL_OF_COMPLEX.items()}
_ARRAY_KINDS = "biuf"


def _check_numeric_dtype(dt: np.dtype, where, what="array"):
    if dt in _REAL_OF_COMPLEX:
        return
    if dt.kind in "iu" or dt.kind == "b" or dt in (np.dtype(np.float32), np.dtype(np.float64)):
        return
    fix = {
        "f": "convert it with .astype(np.float64)",
        "c": "convert it with .astype(np.complex128)",
        "U": "store a list of str instead",
        "S": "decode it and store a list of str instead",
        "O": "convert it to a numeric dtype, or store a list",
    }.get(dt.kind, "convert it to float64, complex128 or an integer type")
    raise TypeError(
        f"cannot store a numpy {what} of dtype {dt} at {where}: the TRIQS scheme holds bool, "
        f"(unsigned) integer, float32/float64 and complex64/complex128 data; {fix}"
    )


# ---------------------------------------------------------------------------
#  Writing
# ---------------------------------------------------------------------------
def _write_scalar_dataset(parent, key, value):
    parent.create_dataset(key, data=value)


def _write_str(parent, key, s, where):
    try:
        parent.create_dataset(key, data=s, dtype=h5py.string_dtype("utf-8"))
    except ValueError as exc:  # e.g. an embedded NUL character
        raise ValueError(f"cannot store the string at {where}: {exc}") from None


def _write_array(parent, key, arr: np.ndarray, where, compress=True):
    """A numpy array as TRIQS h5 writes it: complex as (..., 2) reals, chunked + gzip 1."""
    arr = _native(arr)
    _check_numeric_dtype(arr.dtype, where)
    is_complex = arr.dtype in _REAL_OF_COMPLEX
    if is_complex:
        arr = np.stack((arr.real, arr.imag), axis=-1).astype(_REAL_OF_COMPLEX[arr.dtype])
    arr = _native(arr)
    if arr.ndim == 0 or not compress:
        ds = parent.create_dataset(key, data=arr)
    elif arr.size == 0:
        # h5py refuses a chunk larger than an empty extent; HDF5 (and TRIQS) accept it
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(_chunk_shape(arr.shape, arr.dtype.itemsize))
        dcpl.set_deflate(1)
        space = h5py.h5s.create_simple(arr.shape)
        tid = h5py.h5t.py_create(arr.dtype, logical=True)
        h5py.h5d.create(parent.id, key.encode("utf-8"), tid, space, dcpl=dcpl)
        ds = parent[key]
    else:
        ds = parent.create_dataset(
            key,
            data=arr,
            chunks=_chunk_shape(arr.shape, arr.dtype.itemsize),
            compression="gzip",
            compression_opts=1,
        )
    if is_complex:
        ds.attrs["__complex__"] = "1"


def _write_complex_scalar(parent, key, z, real_dtype):
    ds = parent.create_dataset(key, data=np.array([z.real, z.imag], dtype=real_dtype))
    ds.attrs["__complex__"] = "1"


def _write_mesh_imfreq(parent, key, m, where):
    g = parent.create_group(key)
    g.attrs["Format"] = "MeshImFreq"
    pos = getattr(m, "positive_only", None)
    positive_only = bool(pos()) if callable(pos) else False
    g.create_dataset("beta", data=np.float64(m.beta))
    _write_str(g, "statistic", "F" if m.statistic == "Fermion" else "B", where)
    g.create_dataset("size", data=np.int64(m.size))
    g.create_dataset("positive_freq_only", data=np.int32(1 if positive_only else 0))


def _write_mesh_imtime(parent, key, m, where):
    g = parent.create_group(key)
    g.attrs["Format"] = "MeshImTime"
    g.create_dataset("beta", data=np.float64(m.beta))
    _write_str(g, "statistic", "F" if m.statistic == "Fermion" else "B", where)
    g.create_dataset("n_tau", data=np.int64(m.size))


def _write_mesh_refreq(parent, key, m, where):
    g = parent.create_group(key)
    g.attrs["Format"] = "MeshReFreq"
    g.create_dataset("min", data=np.float64(m.w_min))
    g.create_dataset("max", data=np.float64(m.w_max))
    g.create_dataset("size", data=np.int64(m.size))


def _write_mesh_legendre(parent, key, m, where):
    g = parent.create_group(key)
    g.attrs["Format"] = "MeshLegendre"
    g.create_dataset("beta", data=np.float64(m.beta))
    _write_str(g, "statistic", "F" if m.statistic == "Fermion" else "B", where)
    g.create_dataset("max_n", data=np.int64(m.size))


_MESH_WRITERS = {
    MeshImFreq: _write_mesh_imfreq,
    MeshImTime: _write_mesh_imtime,
    MeshLegendre: _write_mesh_legendre,
    MeshReFreq: _write_mesh_refreq,
}


def _write_container(parent, key, items, fmt, where):
    g = parent.create_group(key)
    seen = {}
    for k, v in items:
        name = str(k)
        if name in seen:
            raise ValueError(
                f"the keys {seen[name]!r} and {k!r} of the dict at {where} both become the "
                f"archive name {name!r}; make the keys distinct as strings"
            )
        seen[name] = k
        _check_key(name, context=f" (an entry of the {fmt} at {where})")
        _write_value(g, name, v, where.child(name))
    g.attrs["Format"] = fmt


def _write_reduced(parent, key, val, where):
    fmt = _format_of_object(val)
    if fmt not in _FORMATS:
        raise TypeError(
            f"cannot store the {type(val).__qualname__} at {where}: its HDF5 Format {fmt!r} is "
            "not registered, so it could not be read back; call "
            f"triqs_mlsolver.gf.register_class({type(val).__name__}) first"
        )
    d = val.__reduce_to_dict__()
    if not isinstance(d, dict):
        raise TypeError(
            f"{type(val).__qualname__}.__reduce_to_dict__() returned a {type(d).__name__}; "
            "it must return a dict {name: value}"
        )
    g = parent.create_group(key)
    for k, v in d.items():
        _check_key(k, context=f" (returned by {type(val).__qualname__}.__reduce_to_dict__())")
        _write_value(g, k, v, where.child(k))
    g.attrs["Format"] = fmt


def _write_value(parent, key, val, where):
    """Write ``val`` as ``parent[key]`` (``key`` must not exist)."""
    if isinstance(val, HDFArchiveGroup):
        parent.copy(val._h5(), key)
        return
    writer = _MESH_WRITERS.get(type(val))
    if writer is not None:
        writer(parent, key, val, where)
        return
    if hasattr(val, "__reduce_to_dict__") and not isinstance(val, type):
        _write_reduced(parent, key, val, where)
    elif isinstance(val, dict):
        _write_container(parent, key, val.items(), "Dict", where)
    elif isinstance(val, list):
        _write_container(parent, key, enumerate(val), "List", where)
    elif isinstance(val, tuple):
        _write_container(parent, key, enumerate(val), "Tuple", where)
    elif isinstance(val, np.ndarray):
        _write_array(parent, key, val, where)
    elif isinstance(val, np.generic):
        _write_numpy_scalar(parent, key, val, where)
    elif isinstance(val, bool):
        _write_scalar_dataset(parent, key, np.bool_(val))
    elif isinstance(val, int):
        if not -(2**63) <= val < 2**63:
            raise OverflowError(
                f"the int {val} at {where} does not fit in int64, the integer type of the TRIQS "
                "scheme; store it as a str or a float"
            )
        _write_scalar_dataset(parent, key, np.int64(val))
    elif isinstance(val, float):
        _write_scalar_dataset(parent, key, np.float64(val))
    elif isinstance(val, complex):
        _write_complex_scalar(parent, key, val, np.float64)
    elif isinstance(val, str):
        _write_str(parent, key, val, where)
    else:
        extra = ""
        if val is None:
            extra = " None cannot be stored (nor can it in TRIQS): omit the key instead."
        elif isinstance(val, (bytes, bytearray)):
            extra = " Decode bytes to str first."
        raise TypeError(
            f"cannot store an object of type {type(val).__qualname__} at {where}. "
            f"Supported: {_SUPPORTED}.{extra}"
        )


def _write_numpy_scalar(parent, key, val, where):
    if isinstance(val, np.str_):
        _write_str(parent, key, str(val), where)
        return
    dt = val.dtype.newbyteorder("=")
    val = val.astype(dt)
    _check_numeric_dtype(dt, where, what="scalar")
    if dt in _REAL_OF_COMPLEX:
        _write_complex_scalar(parent, key, val, _REAL_OF_COMPLEX[dt])
    else:
        _write_scalar_dataset(parent, key, val)


# ---------------------------------------------------------------------------
#  Reading
# ---------------------------------------------------------------------------
def _decode_dataset(ds, where):
    """The Python/numpy value of one dataset, following h5py_io.cpp of TRIQS h5."""
    shape = ds.shape
    if shape is None:
        raise ArchiveFormatError(
            f"the dataset {where} has an empty (null) dataspace, which the TRIQS scheme never "
            "writes; inspect it with h5py"
        )
    dt = ds.dtype
    if h5py.check_string_dtype(dt) is not None:
        raw = ds[()]
        if shape == ():
            return _as_str(raw)
        return np.array([_as_str(x) for x in np.asarray(raw).ravel()], dtype=str).reshape(shape)
    if dt.kind == "c":  # h5's compound complex type {r, i} (dcplx_t), mapped by h5py
        raw = ds[()]
        return complex(raw) if shape == () else raw
    if dt.names is not None:
        raise ArchiveFormatError(
            f"the dataset {where} has the compound type {dt}, which is not in the TRIQS scheme"
        )
    if dt.kind not in _ARRAY_KINDS:
        raise ArchiveFormatError(
            f"the dataset {where} has the type {dt}, which is not in the TRIQS scheme "
            "(numbers, bool, strings)"
        )
    raw = ds[()]
    if "__complex__" in ds.attrs:
        if shape == () or shape[-1] != 2 or dt.kind != "f":
            raise ArchiveFormatError(
                f"the dataset {where} has the attribute __complex__ but shape {shape} and type "
                f"{dt}; a complex array is stored as floats with a last dimension of 2"
            )
        real = np.dtype(dt.newbyteorder("="))
        cdt = _COMPLEX_OF_REAL.get(real, np.dtype(np.complex128))
        out = np.empty(shape[:-1], dtype=cdt)
        out.real = raw[..., 0]
        out.imag = raw[..., 1]
        if len(shape) == 1:  # TRIQS: a rank-1 (2,) complex dataset is a scalar
            return complex(out[()]) if cdt == np.complex128 else out[()]
        return out
    if shape == ():
        if dt.kind == "b":
            return bool(raw)
        if dt.kind == "f" and dt.itemsize == 8:
            return float(raw)
        if dt.kind == "i" and dt.itemsize == 8:
            return int(raw)
        return raw  # other widths keep their numpy type
    return raw


class _Reader:
    """Rebuilds objects from the groups and datasets of one open archive."""

    def __init__(self, archive):
        self.archive = archive

    def where(self, obj_or_path) -> str:
        path = obj_or_path if isinstance(obj_or_path, str) else obj_or_path.name
        return f"'{path}' in archive '{self.archive._filename}'"

    def child(self, parent, name):
        """``parent[name]`` as an h5py object, with clear errors."""
        if name not in parent:
            raise ArchiveKeyError(_missing_key_message(name, parent, self.archive._filename))
        try:
            return parent[name]
        except (KeyError, OSError) as exc:
            raise ArchiveFormatError(
                f"the entry {self.where(_join(parent.name, name))} cannot be opened "
                f"(a dangling or external link?): {exc}"
            ) from None

    def item(self, parent, name, fmt_override=None):
        obj = self.child(parent, name)
        if isinstance(obj, h5py.Dataset):
            return _decode_dataset(obj, self.where(obj))
        if not isinstance(obj, h5py.Group):
            raise ArchiveFormatError(
                f"the entry {self.where(obj)} is neither a group nor a dataset"
            )
        fmt = fmt_override or _format_attr(obj)
        if fmt is None:
            return HDFArchiveGroup(self.archive, obj.name)
        return self.rebuild(obj, fmt)

    def rebuild(self, grp, fmt):
        info = _format_info(fmt)
        if info is None:
            known = ", ".join(sorted(_FORMATS))
            if _format_attr_name(grp) == _TRIQS1_FORMAT_ATTR:
                raise ArchiveFormatError(
                    f"the group {self.where(grp)} was written by TRIQS 1.x "
                    f"({_TRIQS1_FORMAT_ATTR} = {fmt!r}); of TRIQS 1.x objects the light layer "
                    "reads BlockGf, GfImFreq, GfImTime, GfLegendre and the Python list, tuple "
                    f"and dict wrappers, not {fmt!r}. Inspect it with archive.get_raw(key), or "
                    "read it with TRIQS (TRIQS_MLSOLVER_BACKEND=triqs)"
                )
            raise ArchiveFormatError(
                f"the group {self.where(grp)} has the HDF5 Format {fmt!r}, which is not "
                f"registered (known: {known}). If it is a class of yours, call "
                "triqs_mlsolver.gf.register_class(...) before reading; to inspect the raw "
                "group use archive.get_raw(key); objects of other TRIQS applications need "
                "TRIQS itself (TRIQS_MLSOLVER_BACKEND=triqs)"
            )
        if info.reader is not None:
            return info.reader(self, grp, info)
        name = grp.name.rsplit("/", 1)[-1]
        if info.read_fun is not None:
            parent = HDFArchiveGroup(self.archive, grp.parent.name)
            return info.read_fun(parent, name)
        values = {k: self.item(grp, k, info.backward_compat.get(k)) for k in grp}
        try:
            return info.cls.__factory_from_dict__(name, values)
        except Exception as exc:  # give the location; the cause is chained
            raise ArchiveFormatError(
                f"{info.cls.__qualname__}.__factory_from_dict__ failed on the group "
                f"{self.where(grp)} (Format {fmt!r}, entries {sorted(values)}): {exc}"
            ) from exc

    # -- scalars inside meshes ---------------------------------------------
    def scalar(self, groups, names, kind, mesh_grp):
        """The first of ``names`` found in ``groups`` (in order), as ``kind``."""
        for g in groups:
            for n in names:
                if n in g:
                    val = self.item(g, n)
                    return self._convert(val, kind, _join(g.name, n))
        listing = sorted(k for g in groups for k in g)
        raise ArchiveFormatError(
            f"the mesh group {self.where(mesh_grp)} has no entry {' or '.join(names)} "
            f"(found: {listing}); the file is not in a TRIQS mesh layout this reader knows"
        )

    def _convert(self, val, kind, path):
        try:
            if kind == "float":
                return float(val)
            if kind == "int":
                if isinstance(val, (bool, np.bool_)):
                    return int(val)
                iv = int(val)
                if iv != val:
                    raise ValueError
                return iv
            if kind == "stat":
                return normalize_statistic(_as_str(val))
        except (TypeError, ValueError):
            pass
        raise ArchiveFormatError(
            f"the mesh entry {self.where(path)} = {val!r} is not a valid {kind}"
        )


def _join(path, name):
    return f"{path.rstrip('/')}/{name}"


class _Loc:
    """Where a value is written, for error messages: ``'/a/b' in archive 'f.h5'``."""

    __slots__ = ("path", "filename")

    def __init__(self, path, filename):
        self.path, self.filename = path, filename

    def child(self, name):
        return _Loc(_join(self.path, name), self.filename)

    def __str__(self):
        return f"'{self.path}' in archive '{self.filename}'"


def _missing_key_message(key, h5group, filename):
    keys = sorted(h5group.keys())
    hint = difflib.get_close_matches(key, keys, n=1)
    near = f" Did you mean {hint[0]!r}?" if hint else ""
    return (
        f"no key {key!r} in group '{h5group.name}' of archive '{filename}'; available keys: "
        f"{keys}.{near}"
    )


# -- containers --------------------------------------------------------------
def _read_dict(reader, grp, info):
    return {k: reader.item(grp, k) for k in grp}


def _read_sequence(reader, grp, info):
    entries = []
    for k in grp:
        try:
            entries.append((int(k), k))
        except ValueError:
            raise ArchiveFormatError(
                f"the {info.name} group {reader.where(grp)} has an entry named {k!r}; its "
                "entries must be named 0, 1, 2, ..."
            ) from None
    values = [reader.item(grp, k) for _, k in sorted(entries)]
    return tuple(values) if info.name == "Tuple" else values


# -- meshes ------------------------------------------------------------------
def _domain_groups(grp):
    """Where beta and statistic live: ``domain/`` (TRIQS 1.x-3.1) first, then the mesh group."""
    if "domain" in grp and isinstance(grp["domain"], h5py.Group):
        return [grp["domain"], grp]
    return [grp]


def _read_imfreq(reader, grp):
    dom = _domain_groups(grp)
    beta = reader.scalar(dom, ["beta"], "float", grp)
    stat = reader.scalar(dom, ["statistic"], "stat", grp)
    size = reader.scalar([grp], ["size"], "int", grp)
    if "positive_freq_only" in grp:
        positive_only = reader.scalar([grp], ["positive_freq_only"], "int", grp) == 1
    elif "start_at_0" in grp:  # TRIQS 1.x/2.x
        positive_only = reader.scalar([grp], ["start_at_0"], "int", grp) == 1
    elif "kind" in grp:  # TRIQS 1.x positive-only meshes wrote min/max/kind=2
        positive_only = reader.scalar([grp], ["kind"], "int", grp) == 2
    else:
        positive_only = False
    if positive_only:
        n_iw = size
    else:
        expected_parity = 0 if stat == "Fermion" else 1
        if size < 1 or size % 2 != expected_parity:
            raise ArchiveFormatError(
                f"the MeshImFreq {reader.where(grp)} has size {size}, which is not a valid "
                f"number of {stat} Matsubara points (2 n_iw for fermions, 2 n_iw - 1 for bosons)"
            )
        n_iw = (size + 1) // 2
    if n_iw < 1:
        raise ArchiveFormatError(f"the MeshImFreq {reader.where(grp)} is empty (size {size})")
    return MeshImFreq(beta=beta, statistic=stat, n_iw=n_iw), positive_only


def _read_imtime(reader, grp):
    dom = _domain_groups(grp)
    beta = reader.scalar(dom, ["beta"], "float", grp)
    stat = reader.scalar(dom, ["statistic"], "stat", grp)
    n_tau = reader.scalar([grp], ["n_tau", "size"], "int", grp)
    _triqs1_full_bins(reader, grp, "MeshImTime", "tau_k = k beta/(n-1)")
    if "min" in grp or "max" in grp:  # TRIQS 1.x: the ends of the linear mesh
        tmin = reader.scalar([grp], ["min"], "float", grp)
        tmax = reader.scalar([grp], ["max"], "float", grp)
        if abs(tmin) > 1e-12 * beta or abs(tmax - beta) > 1e-12 * beta:
            raise ArchiveFormatError(
                f"the MeshImTime {reader.where(grp)} runs from min={tmin} to max={tmax}, "
                f"not from 0 to beta={beta}; only meshes with both ends tau = 0 and tau = "
                "beta are supported"
            )
    return MeshImTime(beta=beta, statistic=stat, n_tau=n_tau), False


def _triqs1_full_bins(reader, grp, mesh, what):
    """TRIQS 1.x linear meshes carry ``kind`` (0 half_bins, 1 full_bins, 2 without_last):
    only full_bins (``what``) is read."""
    if "kind" in grp:
        kind = reader.scalar([grp], ["kind"], "int", grp)
        if kind != 1:
            raise ArchiveFormatError(
                f"the {mesh} {reader.where(grp)} has kind={kind} (TRIQS 1.x "
                f"half_bins/without_last); only full_bins meshes ({what}) are supported"
            )


def _read_legendre(reader, grp):
    dom = _domain_groups(grp)
    beta = reader.scalar(dom, ["beta"], "float", grp)
    stat = reader.scalar(dom, ["statistic"], "stat", grp)
    max_n = reader.scalar(dom, ["max_n", "n_max", "size"], "int", grp)
    return MeshLegendre(beta=beta, statistic=stat, max_n=max_n), False


def _read_refreq(reader, grp):
    w_min = reader.scalar([grp], ["min"], "float", grp)
    w_max = reader.scalar([grp], ["max"], "float", grp)
    size = reader.scalar([grp], ["size"], "int", grp)
    _triqs1_full_bins(reader, grp, "MeshReFreq", "both ends included")
    return MeshReFreq(window=(w_min, w_max), n_w=size), False


_MESH_READERS = {
    "MeshImFreq": _read_imfreq,
    "MeshImTime": _read_imtime,
    "MeshLegendre": _read_legendre,
    "MeshReFreq": _read_refreq,
}


def _read_mesh_any(reader, grp, fmt):
    fun = _MESH_READERS.get(fmt)
    if fun is None:
        raise ArchiveFormatError(
            f"the mesh {reader.where(grp)} has Format {fmt!r}; the light layer reads "
            f"{', '.join(_MESH_READERS)} only. Use TRIQS (TRIQS_MLSOLVER_BACKEND=triqs) for "
            "other meshes"
        )
    try:
        return fun(reader, grp)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ArchiveFormatError):
            raise
        raise ArchiveFormatError(f"the mesh {reader.where(grp)} is invalid: {exc}") from exc


def _read_mesh(reader, grp, info):
    mesh, positive_only = _read_mesh_any(reader, grp, info.name)
    if positive_only:
        raise ArchiveFormatError(
            f"the MeshImFreq {reader.where(grp)} holds positive frequencies only, which the "
            "light MeshImFreq cannot represent; read the Gf that contains it (it is unfolded "
            "with G(-iw) = G(iw)^*, as TRIQS does)"
        )
    return mesh


# -- Green's functions -------------------------------------------------------
def _unfold_positive_matsubara(data, statistic):
    """Full mesh from positive frequencies, G(-i w_n) = G(i w_n)^* (TRIQS make_gf_from_real_gf)."""
    length = data.shape[0]
    is_boson = statistic == "Boson"
    out = np.empty((2 * length - is_boson, *data.shape[1:]), dtype=complex)
    first = length - 1 if is_boson else length
    for u in range(length):
        out[first + u] = data[u]
        if u >= is_boson:
            out[length - 1 - u] = np.conj(data[u])
    return out


def _read_gf(reader, grp, info):
    present = sorted(grp.keys())
    missing = [k for k in ("mesh", "data") if k not in grp]
    if missing:
        raise ArchiveFormatError(
            f"the Gf group {reader.where(grp)} lacks {missing} (found {present}); a Gf group "
            "holds 'mesh' and 'data'"
        )
    mesh_grp = reader.child(grp, "mesh")
    if not isinstance(mesh_grp, h5py.Group):
        raise ArchiveFormatError(f"the Gf mesh {reader.where(mesh_grp)} is not a group")
    mesh_fmt = info.backward_compat.get("mesh") or _format_attr(mesh_grp)
    if mesh_fmt is None:
        raise ArchiveFormatError(
            f"the mesh group {reader.where(mesh_grp)} has no Format attribute, so its kind "
            "is unknown (expected MeshImFreq, MeshImTime, MeshLegendre or MeshReFreq)"
        )
    mesh, positive_only = _read_mesh_any(reader, mesh_grp, mesh_fmt)
    data = reader.item(grp, "data")
    if not isinstance(data, np.ndarray) or data.ndim < 1 or data.dtype.kind not in "biufc":
        raise ArchiveFormatError(
            f"the Gf data {reader.where(_join(grp.name, 'data'))} is {type(data).__name__}; "
            "expected a numeric array [mesh point, *target]"
        )
    if positive_only:
        data = _unfold_positive_matsubara(data, mesh.statistic)
    if data.shape[0] != len(mesh):
        raise ArchiveFormatError(
            f"the Gf {reader.where(grp)} has data of shape {data.shape} but its mesh {mesh!r} "
            f"has {len(mesh)} points; the first axis of data must run over the mesh"
        )
    name = grp.name.rsplit("/", 1)[-1]
    try:
        return info.cls.__factory_from_dict__(name, {"mesh": mesh, "data": data})
    except Exception as exc:
        raise ArchiveFormatError(f"cannot build a Gf from {reader.where(grp)}: {exc}") from exc


def _read_block_gf(reader, grp, info):
    keys = list(grp.keys())
    if "block_names" in grp:
        names = reader.item(grp, "block_names")
    elif "indices" in grp:  # TRIQS 1.x/2.x: repr of the list of block names
        names = reader.item(grp, "indices")
        if isinstance(names, str):
            try:
                names = ast.literal_eval(names)
            except (ValueError, SyntaxError):
                raise ArchiveFormatError(
                    f"the legacy BlockGf {reader.where(grp)} has indices={names!r}, which is "
                    "not a Python list of block names"
                ) from None
    else:
        raise ArchiveFormatError(
            f"the BlockGf group {reader.where(grp)} has neither 'block_names' nor 'indices' "
            f"(found {sorted(keys)}), so the block order is unknown"
        )
    if isinstance(names, np.ndarray) and names.ndim == 1:  # TRIQS 1.x: an array of str
        names = names.tolist()
    if not isinstance(names, (list, tuple)) or not names:
        raise ArchiveFormatError(
            f"the block names of {reader.where(grp)} are {names!r}; expected a non-empty list"
        )
    names = [_as_str(n) for n in names]
    missing = [n for n in names if n not in grp]
    bookkeeping = ("block_names", "indices", "name", "note")
    extra = [k for k in keys if k not in names and k not in bookkeeping]
    if missing or extra:
        raise ArchiveFormatError(
            f"the BlockGf {reader.where(grp)} lists blocks {names} but holds {sorted(keys)} "
            f"(missing {missing}, unexpected {extra})"
        )
    d = {n: reader.item(grp, n) for n in names}
    d["block_names"] = names
    name = grp.name.rsplit("/", 1)[-1]
    try:
        return info.cls.__factory_from_dict__(name, d)
    except Exception as exc:
        raise ArchiveFormatError(f"cannot build a BlockGf from {reader.where(grp)}: {exc}") from exc


def _legacy_gf_children(fmt):
    """TRIQS python/triqs/gf/gf.py ``bckwd``: 'GfImFreq_s' -> mesh Format 'MeshImFreq'."""
    m = fmt[2:]
    for suffix in ("_s", "Tv3", "Tv4"):
        if m.endswith(suffix):
            m = m[: -len(suffix)]
            break
    return {"mesh": "Mesh" + m}


_register_builtin("Dict", dict, _read_dict, "Python dict; entries named str(key)")
_register_builtin("List", list, _read_sequence, "Python list; entries named 0, 1, ...")
_register_builtin("Tuple", tuple, _read_sequence, "Python tuple; entries named 0, 1, ...")
_register_builtin("MeshImFreq", MeshImFreq, _read_mesh, "beta, statistic, size, positive_freq_only")
_register_builtin("MeshImTime", MeshImTime, _read_mesh, "beta, statistic, n_tau")
_register_builtin("MeshLegendre", MeshLegendre, _read_mesh, "beta, statistic, max_n")
_register_builtin("MeshReFreq", MeshReFreq, _read_mesh, "min, max, size")
_register_builtin("Gf", Gf, _read_gf, "mesh (group), data [mesh, *target]")
_register_builtin("BlockGf", BlockGf, _read_block_gf, "one Gf per block, block_names (List)")
_register_legacy(r"PythonListWrap", "List")
_register_legacy(r"PythonTupleWrap", "Tuple")
_register_legacy(r"PythonDictWrap", "Dict")
_register_legacy(r"Gf(ImFreq|ImTime|Legendre|ReFreq)(_s|Tv3|Tv4)?", "Gf", _legacy_gf_children)


# ---------------------------------------------------------------------------
#  The archive classes
# ---------------------------------------------------------------------------
class HDFArchiveGroup:
    """A dict-like view on one group of an open :class:`HDFArchive` (TRIQS ``HDFArchiveGroup``).

    Returned by ``ar[key]`` for HDF5 groups that carry no ``Format``
    attribute, and by :meth:`create_group` and :meth:`get_raw`.  The view is
    valid while its archive is open.

    Reading ``g[key]`` rebuilds Python objects: a group with a ``Format``
    attribute becomes the registered class (``Gf``, ``BlockGf``, ``dict``,
    ``list``...), a group without one becomes another ``HDFArchiveGroup``, a
    dataset becomes a Python scalar, str or numpy array.  Writing
    ``g[key] = value`` replaces an existing entry, as TRIQS does.
    """

    def __init__(self, archive, path):
        self._archive = archive
        self._path = path

    # -- access to the h5py object ------------------------------------------
    def _h5(self) -> h5py.Group:
        f = self._archive._file
        if f is None:
            raise ValueError(
                f"the archive '{self._archive._filename}' is closed; reopen it with "
                f"HDFArchive('{self._archive._filename}', 'r')"
            )
        return f[self._path] if self._path != "/" else f

    def _writable(self) -> h5py.Group:
        grp = self._h5()
        if self._archive._open_flag == "r":
            raise ArchiveReadOnlyError(
                f"the archive '{self._archive._filename}' was opened read-only "
                f"(open_flag='r'); open it with HDFArchive('{self._archive._filename}', 'a') "
                "to modify it"
            )
        return grp

    @property
    def name(self) -> str:
        """The HDF5 path of this group (``'/'`` for the archive itself)."""
        return self._path

    # -- dict protocol ------------------------------------------------------
    def keys(self) -> list:
        """The names of the entries of this group (HDF5 order: sorted by name)."""
        return list(self._h5().keys())

    def values(self):
        """A generator of the (rebuilt) values of the entries."""
        return (self[k] for k in self.keys())

    def items(self):
        """A generator of the pairs ``(key, value)``, values rebuilt as by ``self[key]``."""
        return ((k, self[k]) for k in self.keys())

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._h5())

    def __contains__(self, key):
        return isinstance(key, str) and key in self._h5()

    def is_group(self, key) -> bool:
        """True if ``key`` exists and is an HDF5 group."""
        return self._kind(key) is h5py.Group

    def is_data(self, key) -> bool:
        """True if ``key`` exists and is an HDF5 dataset."""
        return self._kind(key) is h5py.Dataset

    def _kind(self, key):
        grp = self._h5()
        if not isinstance(key, str) or key not in grp:
            return None
        try:
            return grp.get(key, getclass=True)
        except (KeyError, OSError):  # dangling link
            return None

    def __getitem__(self, key):
        """The value stored at ``key``; ``'a/b'`` reads ``b`` inside the group ``a``."""
        if not isinstance(key, str):
            raise TypeError(f"archive keys are strings; got {key!r} of type {type(key).__name__}")
        parts = [p for p in key.split("/") if p]
        if not parts:
            return self
        grp = self
        for p in parts[:-1]:
            grp = grp.get_raw(p)
            if not isinstance(grp, HDFArchiveGroup):
                raise ArchiveKeyError(
                    f"cannot read {key!r}: {p!r} in archive '{self._archive._filename}' is a "
                    "dataset, not a group"
                )
        return _Reader(self._archive).item(grp._h5(), parts[-1])

    def get_raw(self, key):
        """Like ``self[key]``, but a group is returned as a raw :class:`HDFArchiveGroup`."""
        _check_key(key)
        reader = _Reader(self._archive)
        obj = reader.child(self._h5(), key)
        if isinstance(obj, h5py.Group):
            return HDFArchiveGroup(self._archive, obj.name)
        return _decode_dataset(obj, reader.where(obj))

    def __setitem__(self, key, value):
        _check_key(key)
        grp = self._writable()
        where = _Loc(_join(self._path, key), self._archive._filename)
        tmp = f".{key}.partial"
        while tmp in grp:
            tmp = "." + tmp
        try:
            _write_value(grp, tmp, value, where)
        except BaseException:
            if tmp in grp:
                del grp[tmp]
            raise
        if key in grp:
            del grp[key]
        grp.move(tmp, key)
        self._archive._flush()

    def __delitem__(self, key):
        _check_key(key)
        grp = self._writable()
        if key not in grp:
            raise ArchiveKeyError(_missing_key_message(key, grp, self._archive._filename))
        del grp[key]

    def update(self, mapping):
        """Write every ``(key, value)`` of ``mapping`` (a dict or an iterable of pairs)."""
        items = mapping.items() if hasattr(mapping, "items") else mapping
        for k, v in items:
            self[k] = v

    def create_group(self, key) -> HDFArchiveGroup:
        """Create the empty subgroup ``key`` (replacing an existing entry, as TRIQS does)."""
        _check_key(key)
        grp = self._writable()
        if key in grp:
            del grp[key]
        grp.create_group(key)
        return HDFArchiveGroup(self._archive, _join(self._path, key))

    # -- printing and context -------------------------------------------------
    def __repr__(self):
        try:
            grp = self._h5()
        except ValueError as exc:
            return f"<HDFArchiveGroup '{self._path}' ({exc})>"
        lines = [
            f"  {k} : {'subgroup' if isinstance(grp[k], h5py.Group) else 'data'}"
            for k in grp.keys()
        ]
        head = f"HDFArchiveGroup '{self._path}' of '{self._archive._filename}'"
        return head + " with the following content:\n" + "\n".join(lines)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class HDFArchive(HDFArchiveGroup):
    """An HDF5 file in the TRIQS scheme, used like a dict (TRIQS ``h5.HDFArchive``).

    Parameters
    ----------
    path : str or os.PathLike
        The file name.
    open_flag : {'a', 'r', 'w'}
        ``'r'`` read only (the file must exist), ``'w'`` create or truncate,
        ``'a'`` read and write, creating the file if needed (default).

    Raises
    ------
    FileNotFoundError
        ``open_flag='r'`` and the file does not exist.
    ArchiveFormatError
        The file exists but is not an HDF5 file, or was written by a newer
        ``HDFArchive`` (attribute ``HDFArchive_Version`` > 1).
    ValueError
        ``open_flag`` is not one of ``'r'``, ``'w'``, ``'a'``.

    Notes
    -----
    The file is closed by :meth:`close`, by leaving a ``with`` block, or when
    the object is garbage collected.  Only one process may write a file: with
    MPI, open it for writing on rank 0 only.  Deleting or overwriting entries
    does not shrink the file (an HDF5 property; ``h5repack`` does).

    Reading a group whose ``Format`` is not registered raises
    :class:`~triqs_mlsolver.errors.ArchiveFormatError` (TRIQS warns and
    returns the raw group instead; here ``ar.get_raw(key)`` does that on
    request), so that an unknown object is never mistaken for a plain group.
    """

    def __init__(self, path, open_flag="a"):
        self._file = None
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"HDFArchive needs a file name (str or pathlib.Path); got {type(path).__name__}"
            )
        if open_flag not in _OPEN_FLAGS:
            raise ValueError(
                f"open_flag={open_flag!r} is not understood; use 'r' (read), 'w' (create or "
                "truncate) or 'a' (read and write, default)"
            )
        filename = os.fspath(path)
        self._filename = filename
        self._open_flag = open_flag
        exists = os.path.exists(filename)
        if os.path.isdir(filename):
            raise IsADirectoryError(f"'{filename}' is a directory; give an HDF5 file name")
        if open_flag == "r" and not exists:
            raise FileNotFoundError(
                f"no such HDF5 file: '{filename}' (open_flag='r' needs an existing file; "
                "use 'w' or 'a' to create one)"
            )
        parent_dir = os.path.dirname(os.path.abspath(filename))
        if not exists and not os.path.isdir(parent_dir):
            raise FileNotFoundError(
                f"cannot create '{filename}': the directory '{parent_dir}' does not exist"
            )
        if exists and open_flag in ("r", "a") and not h5py.is_hdf5(filename):
            raise ArchiveFormatError(
                f"'{filename}' is not an HDF5 file; open it with open_flag='w' to replace it "
                "by an empty archive, or check the file name"
            )
        try:
            f = h5py.File(filename, _OPEN_FLAGS[open_flag])
        except OSError as exc:
            raise OSError(
                f"cannot open '{filename}' with open_flag={open_flag!r}: {exc}. Is it open for "
                "writing elsewhere (another HDFArchive, or another MPI rank; only rank 0 "
                "should write)?"
            ) from exc
        if open_flag != "w" and "HDFArchive_Version" in f.attrs:
            raw = f.attrs["HDFArchive_Version"]
            try:
                version = int(np.asarray(raw).reshape(-1)[0])
            except (TypeError, ValueError):
                version = None
            if version is None or version > _HDF_ARCHIVE_VERSION:
                f.close()
                raise ArchiveFormatError(
                    f"'{filename}' has the attribute HDFArchive_Version={raw!r}, newer than "
                    f"the version {_HDF_ARCHIVE_VERSION} this reader knows; read it with a "
                    "newer triqs_mlsolver or with TRIQS"
                )
        self._file = f
        self._path = "/"

    @property
    def _archive(self):  # the root is its own archive, without a reference cycle
        return self

    @property
    def filename(self) -> str:
        """The file name given to the constructor."""
        return self._filename

    @property
    def open_flag(self) -> str:
        return self._open_flag

    @property
    def closed(self) -> bool:
        return self._file is None

    def _flush(self):
        if self._file is not None and self._open_flag != "r":
            self._file.flush()

    def close(self):
        """Flush and close the file; further access raises ``ValueError``. Idempotent."""
        f, self._file = self._file, None
        if f is not None:
            try:
                if self._open_flag != "r":
                    f.flush()
            finally:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: h5py may already be gone
            pass

    def __repr__(self):
        if self._file is None:
            return f"<HDFArchive '{self._filename}' (closed)>"
        lines = [
            f"  {k} : {'subgroup' if isinstance(self._file[k], h5py.Group) else 'data'}"
            for k in self._file.keys()
        ]
        head = f"HDFArchive '{self._filename}' (open_flag='{self._open_flag}')"
        return head + " with the following content:\n" + "\n".join(lines)
