# SPDX-License-Identifier: Apache-2.0
"""DMFT self-consistency loops (Bethe lattice first)."""

from .bethe import DMFTResult, bethe_dmft, initial_g, semicircle_g

__all__ = ["DMFTResult", "bethe_dmft", "initial_g", "semicircle_g"]
