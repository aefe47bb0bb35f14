# SPDX-License-Identifier: Apache-2.0
"""MPI helpers, compatible with ``triqs.utility.mpi``.

Scripts written for TRIQS run unchanged with::

    from triqs_mlsolver import mpi
    mpi.report("starting")          # printed on rank 0 only
    x = mpi.bcast(x)
    total = mpi.all_reduce(partial)  # elementwise sum for numpy arrays

Communicator selection (once, at import)
----------------------------------------
``world`` is ``mpi4py.MPI.COMM_WORLD`` when ``mpi4py`` imports and its MPI
library initialises.  Otherwise, or when the environment variable
``TRIQS_MLSOLVER_NO_MPI`` is ``1`` (also ``true``, ``yes``, ``on``), ``world``
is a :class:`SerialCommunicator`: one rank, the same method names, every
collective an identity.  :data:`HAS_MPI` tells which one is in use and
:data:`fallback_reason` why the serial one was chosen.

Attributes
----------
world : mpi4py.MPI.Intracomm or SerialCommunicator
    The communicator all functions use by default.
rank : int
    Rank of this process in ``world``.
size : int
    Number of ranks in ``world``.
master : int
    The master rank, 0.
HAS_MPI : bool
    True if ``world`` is an mpi4py communicator.
fallback_reason : str or None
    Why the serial communicator is used; None when ``HAS_MPI``.
"""

import os
import sys
import time

import numpy as np

__all__ = [
    "SerialCommunicator",
    "world",
    "rank",
    "size",
    "master",
    "HAS_MPI",
    "fallback_reason",
    "is_master_node",
    "report",
    "bcast",
    "barrier",
    "all_reduce",
    "gather",
    "allgather",
    "slice_inf",
    "slice_sup",
    "slice_len",
    "slice_array",
]

_ENV_NO_MPI = "TRIQS_MLSOLVER_NO_MPI"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class SerialCommunicator:
    """Single-rank stand-in for ``mpi4py.MPI.COMM_WORLD``.

    Offers the mpi4py methods this package uses, with the results they have
    on one rank: ``bcast`` and ``allreduce`` return their argument (a copy
    for numpy arrays), ``gather`` and ``allgather`` a one-element list.
    """

    rank = 0
    size = 1

    def Get_rank(self):
        """Return 0."""
        return 0

    def Get_size(self):
        """Return 1."""
        return 1

    @staticmethod
    def _check_root(root):
        if root != 0:
            raise ValueError(f"root must be 0 on a single-rank communicator, got {root!r}")

    def bcast(self, obj, root=0):
        """Return ``obj``."""
        self._check_root(root)
        return obj

    def allreduce(self, sendobj, op=None):
        """Return ``sendobj`` (a reduction over one rank), copied if it is an array."""
        return sendobj.copy() if isinstance(sendobj, np.ndarray) else sendobj

    def Allreduce(self, sendbuf, recvbuf, op=None):
        """Copy ``sendbuf`` into ``recvbuf``."""
        np.copyto(recvbuf, sendbuf)

    def reduce(self, sendobj, op=None, root=0):
        """Return ``sendobj``."""
        self._check_root(root)
        return self.allreduce(sendobj)

    def gather(self, sendobj, root=0):
        """Return ``[sendobj]``."""
        self._check_root(root)
        return [sendobj]

    def allgather(self, sendobj):
        """Return ``[sendobj]``."""
        return [sendobj]

    def barrier(self):
        """Do nothing."""

    Barrier = barrier

    def __repr__(self):
        return "SerialCommunicator(rank=0, size=1)"


def _select_world(environ=None):
    """Choose the communicator.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read ``TRIQS_MLSOLVER_NO_MPI`` from; default ``os.environ``.

    Returns
    -------
    comm : mpi4py.MPI.Intracomm or SerialCommunicator
    reason : str or None
        Why the serial communicator was chosen, None for mpi4py.

    Raises
    ------
    ValueError
        If ``TRIQS_MLSOLVER_NO_MPI`` has a value that is neither true nor false.
    """
    environ = os.environ if environ is None else environ
    flag = environ.get(_ENV_NO_MPI, "").strip().lower()
    if flag in _TRUE:
        return SerialCommunicator(), f"{_ENV_NO_MPI}={environ[_ENV_NO_MPI]}"
    if flag not in _FALSE:
        raise ValueError(
            f"{_ENV_NO_MPI}={environ[_ENV_NO_MPI]!r} is not understood; set it to 1 "
            "to run without MPI, or to 0 / unset it to use mpi4py"
        )
    try:
        from mpi4py import MPI
    except (ImportError, OSError, RuntimeError) as exc:
        return SerialCommunicator(), f"mpi4py unavailable: {type(exc).__name__}: {exc}"
    return MPI.COMM_WORLD, None


world, fallback_reason = _select_world()
HAS_MPI = fallback_reason is None
rank = world.Get_rank()
size = world.Get_size()
master = 0


def _is_comm(obj):
    if isinstance(obj, SerialCommunicator):
        return True
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and isinstance(obj, mpi.Comm)


def _resolve(comm):
    if comm is None:
        return world
    if not _is_comm(comm):
        raise TypeError(
            f"comm must be an mpi4py communicator or triqs_mlsolver.mpi.world, got "
            f"{type(comm).__name__}"
        )
    return comm


def is_master_node(comm=None):
    """Return True on the master rank (rank 0) of ``comm`` (default ``world``)."""
    return _resolve(comm).Get_rank() == master


def report(*args, stderr=False, comm=None):
    """Print each argument on its own line, on rank 0 only, and flush.

    Parameters
    ----------
    *args : object
        Printed with ``str``.
    stderr : bool, optional
        Print to ``sys.stderr`` instead of ``sys.stdout``.
    comm : communicator, optional
        Default ``world``.
    """
    if _resolve(comm).Get_rank() != 0:
        return
    stream = sys.stderr if stderr else sys.stdout
    for arg in args:
        stream.write(f"{arg}\n")
    stream.flush()


def bcast(x, root=0, *, comm=None):
    """Broadcast ``x`` from rank ``root``; every rank returns root's value."""
    return _resolve(comm).bcast(x, root=root)


def barrier(poll_msec=1, *, comm=None):
    """Wait until every rank has reached this call.

    Parameters
    ----------
    poll_msec : float, optional
        As in TRIQS: with mpi4py, poll a non-blocking barrier every
        ``poll_msec`` milliseconds instead of busy-waiting; 0 uses the
        blocking ``comm.barrier()``.
    comm : communicator, optional
        Default ``world``.
    """
    comm = _resolve(comm)
    if not poll_msec or isinstance(comm, SerialCommunicator):
        comm.barrier()
        return
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(poll_msec / 1000)


def _sum_op():
    mpi = sys.modules.get("mpi4py.MPI")
    return None if mpi is None else mpi.SUM


def all_reduce(*args, **kwargs):
    """Reduce a value over all ranks; every rank gets the result.

    Accepts both TRIQS signatures:

    * ``all_reduce(x, comm=world, op=None)`` (TRIQS >= 3.1);
    * ``all_reduce(comm, x, F)`` (older TRIQS), recognised by a communicator
      as first positional argument.

    Parameters
    ----------
    x : object
        Local contribution.  A numeric numpy array is summed elementwise with
        ``Allreduce``; its shape and dtype must be the same on every rank.
        Other objects are pickled and reduced with ``comm.allreduce``.
    comm : communicator, optional
        Default ``world``.
    op : mpi4py.MPI.Op or callable, optional
        Reduction; None (default) or ``MPI.SUM`` sums.  A callable
        ``op(a, b)`` is applied pairwise to the pickled values.

    Returns
    -------
    object
        The reduced value; for arrays a new array (never a view of ``x``).
    """
    if args and _is_comm(args[0]):
        if len(args) < 2 or "x" in kwargs or "comm" in kwargs:
            raise TypeError(
                "all_reduce(comm, x, F) needs x as second positional argument; "
                "prefer all_reduce(x, comm=comm, op=F)"
            )
        comm, x = args[0], args[1]
        op = args[2] if len(args) > 2 else kwargs.pop("op", None)
        if len(args) > 3 or kwargs:
            raise TypeError("all_reduce(comm, x, F) takes at most 3 arguments")
    else:
        names = ("x", "comm", "op")
        if len(args) > 3:
            raise TypeError("all_reduce(x, comm=world, op=None) takes at most 3 arguments")
        params = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"all_reduce() got an unexpected keyword argument {key!r}")
            if key in params:
                raise TypeError(f"all_reduce() got multiple values for argument {key!r}")
            params[key] = value
        if "x" not in params:
            raise TypeError("all_reduce() missing required argument 'x'")
        x, comm, op = params["x"], params.get("comm"), params.get("op")
    comm = _resolve(comm)
    is_sum = op is None or op is _sum_op()
    if isinstance(comm, SerialCommunicator):
        return comm.allreduce(x)
    if is_sum and isinstance(x, np.ndarray) and x.dtype.kind in "biufc":
        sendbuf = np.ascontiguousarray(x)
        recvbuf = np.empty_like(sendbuf)
        comm.Allreduce(sendbuf, recvbuf, op=_sum_op())
        return recvbuf
    return comm.allreduce(x, op=_sum_op() if op is None else op)


def gather(x, root=0, *, comm=None):
    """Gather ``x`` from every rank: a list by rank on ``root``, None elsewhere."""
    return _resolve(comm).gather(x, root=root)


def allgather(x, *, comm=None):
    """Gather ``x`` from every rank; every rank gets the list ordered by rank."""
    return _resolve(comm).allgather(x)


# ---------------------------------------------------------------------------
# distributing items over ranks
# ---------------------------------------------------------------------------


def _rank_size(imin, imax, rank_, size_):
    for name, value in (("imin", imin), ("imax", imax)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if imax < imin - 1:
        raise ValueError(
            f"need imax >= imin - 1 for the inclusive range [imin, imax], got "
            f"imin={imin}, imax={imax}"
        )
    rank_ = rank if rank_ is None else rank_
    size_ = size if size_ is None else size_
    if size_ < 1 or not 0 <= rank_ < size_:
        raise ValueError(f"need 0 <= rank < size, got rank={rank_}, size={size_}")
    n_items = imax - imin + 1
    chunk, extra = divmod(n_items, size_)
    return rank_, chunk, extra


def slice_inf(imin, imax, *, rank=None, size=None):
    """First index of this rank's share of the inclusive range ``[imin, imax]``.

    The ``N = imax - imin + 1`` items are cut into contiguous shares; the
    first ``N % size`` ranks get one item more.  As in ``triqs.utility.mpi``.

    Parameters
    ----------
    imin, imax : int
        Inclusive range; ``imax = imin - 1`` is the empty range.
    rank, size : int, optional
        Override the module's ``rank`` and ``size`` (for planning or tests).

    Returns
    -------
    int
    """
    r, chunk, extra = _rank_size(imin, imax, rank, size)
    return imin + r * chunk + min(r, extra)


def slice_sup(imin, imax, *, rank=None, size=None):
    """Last index (inclusive) of this rank's share; see :func:`slice_inf`.

    Equals ``slice_inf(...) - 1`` when the share is empty.
    """
    r, chunk, extra = _rank_size(imin, imax, rank, size)
    return imin + (r + 1) * chunk + min(r + 1, extra) - 1


def slice_len(imin, imax, *, rank=None, size=None):
    """Number of items in this rank's share; see :func:`slice_inf`."""
    return (
        slice_sup(imin, imax, rank=rank, size=size)
        - slice_inf(imin, imax, rank=rank, size=size)
        + 1
    )


def slice_array(A, *, rank=None, size=None):
    """This rank's share of ``A`` along its first axis (a view for numpy arrays).

    Parameters
    ----------
    A : numpy.ndarray or sequence
    rank, size : int, optional
        See :func:`slice_inf`.

    Returns
    -------
    numpy.ndarray or sequence
        ``A[slice_inf(0, len(A) - 1) : slice_sup(0, len(A) - 1) + 1]``.
    """
    imax = len(A) - 1
    lo = slice_inf(0, imax, rank=rank, size=size)
    hi = slice_sup(0, imax, rank=rank, size=size)
    return A[lo : hi + 1]
