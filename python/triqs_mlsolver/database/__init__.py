# SPDX-License-Identifier: Apache-2.0
"""Training databases: sampler, MPI generation, schema, reading and analysis."""

from .config import DEFAULTS, ConfigError, load_config, validate_config
from .generate import generate, solve_sample
from .reader import Database, error_table, export_sample, plot_database, summary
from .sampler import sample_params
from .schema import SCHEMA, check_schema

__all__ = [
    "DEFAULTS",
    "ConfigError",
    "load_config",
    "validate_config",
    "generate",
    "solve_sample",
    "Database",
    "error_table",
    "export_sample",
    "plot_database",
    "summary",
    "sample_params",
    "SCHEMA",
    "check_schema",
]
