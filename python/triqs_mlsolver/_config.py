# SPDX-License-Identifier: Apache-2.0
"""Shared checks of TOML configurations (databases, training): unknown sections and keys."""

from __future__ import annotations

__all__ = ["check_sections"]


def check_sections(cfg, defaults: dict, error_cls) -> None:
    """Raise ``error_cls`` naming the section or key when ``cfg`` has one not in ``defaults``."""
    if not isinstance(cfg, dict):
        raise error_cls("the configuration must be a table of sections")
    for sec, body in cfg.items():
        if sec not in defaults:
            allowed = ", ".join(f"[{x}]" for x in defaults)
            raise error_cls(f"unknown section [{sec}]; allowed sections: {allowed}")
        if not isinstance(body, dict):
            raise error_cls(f"[{sec}] must be a table of keys")
        for key in body:
            if key not in defaults[sec]:
                raise error_cls(
                    f"unknown key {key!r} in [{sec}]; allowed keys: {', '.join(defaults[sec])}"
                )
