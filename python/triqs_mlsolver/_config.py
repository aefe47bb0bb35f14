# SPDX-License-Identifier: Apache-2.0
"""Shared handling of TOML configurations (databases, training, DMFT scans): reading a
file, unknown sections and keys, writing a validated config back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["check_sections", "read_toml", "config_to_toml"]


def read_toml(path, error_cls, missing_hint: str) -> dict:
    """The table of the TOML file ``path``; a missing file or invalid TOML raises
    ``error_cls`` (the missing-file message ends with ``missing_hint``)."""
    p = Path(path)
    if not p.is_file():
        raise error_cls(f"config file {str(p)!r} not found{missing_hint}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise error_cls(f"{p}: not valid TOML ({exc})") from None


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} of type {type(v).__name__} as TOML")


def config_to_toml(cfg: dict) -> str:
    """Serialise a validated config to TOML (``tomllib.loads`` gives it back);
    sub-tables (e.g. solver options) follow their section."""
    lines = []
    for sec, body in cfg.items():
        lines.append(f"[{sec}]")
        subs = []
        for k, v in body.items():
            if isinstance(v, dict):
                subs.append((k, v))
            else:
                lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
        for k, v in subs:
            lines.append(f"[{sec}.{k}]")
            lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
            lines.append("")
    return "\n".join(lines)


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
