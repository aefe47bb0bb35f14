# SPDX-License-Identifier: Apache-2.0
"""Exception and warning classes of triqs_mlsolver.

One class per recurring mistake, so that callers can catch precisely what
went wrong and the messages can say how to fix it.  Every class derives from
a builtin exception (``ValueError``, ``KeyError``, ...) so code written for
TRIQS, which raises the builtins, keeps working.
"""

import io

__all__ = [
    "TriqsMLSolverError",
    "MeshMismatchError",
    "GfStructError",
    "ArchiveFormatError",
    "ArchiveKeyError",
    "ArchiveReadOnlyError",
    "UnknownParameterError",
    "TriqsMLSolverWarning",
    "LegacyGfStructWarning",
    "InvalidG0Error",
    "OutOfDomainError",
    "InvalidSolutionError",
    "InvalidSolutionWarning",
]


class TriqsMLSolverError(Exception):
    """Base class of every error raised by triqs_mlsolver."""


class MeshMismatchError(TriqsMLSolverError, ValueError):
    """Two Green's functions on different meshes (kind, beta, size) were combined."""


class GfStructError(TriqsMLSolverError, ValueError):
    """A ``gf_struct`` is malformed or does not match the object it is used with."""


class ArchiveFormatError(TriqsMLSolverError, ValueError):
    """An HDF5 file or group is not in the TRIQS HDF5 scheme (or is corrupt)."""


class ArchiveKeyError(TriqsMLSolverError, KeyError):
    """A key requested from an :class:`HDFArchive` does not exist."""

    def __str__(self):  # KeyError quotes its argument; keep the sentence readable
        return str(self.args[0]) if self.args else ""


class ArchiveReadOnlyError(TriqsMLSolverError, io.UnsupportedOperation):
    """Writing to an :class:`HDFArchive` opened read-only (``'r'``)."""


class UnknownParameterError(TriqsMLSolverError, TypeError):
    """An unknown keyword argument was passed (misspelt or not supported)."""


class InvalidG0Error(TriqsMLSolverError, ValueError):
    """``G0_iw`` is not the Green's function of an impurity coupled to a Hermitian bath
    (not causal, conjugated or negated, a tail that is not ``1/(i w_n)``, another beta)."""


class OutOfDomainError(TriqsMLSolverError, ValueError):
    """``MLSolver`` with ``fallback='raise'``: the input is outside the model's domain."""


class InvalidSolutionError(TriqsMLSolverError, RuntimeError):
    """A solution violates an exact property (:func:`triqs_mlsolver.validity.check_solution`)."""


class TriqsMLSolverWarning(UserWarning):
    """Base class of the warnings of triqs_mlsolver."""


class LegacyGfStructWarning(TriqsMLSolverWarning, DeprecationWarning):
    """A legacy ``gf_struct`` form (``[('up', [0])]`` or a dict) was converted."""


class InvalidSolutionWarning(TriqsMLSolverWarning):
    """``MLSolver`` with ``fallback='none'`` returned a solution that violates an exact
    property (:func:`triqs_mlsolver.validity.check_solution`)."""
