"""Adapter for CTFFIND 4.1/5 (Rohou & Grigorieff 2015; Elferich et al. 2024), where a facility
has it installed: build its input, run it, and read its results and 1D profiles."""

from cryolive.adapters.ctffind._parse import (
    CtffindOutputError,
    CtffindProfiles,
    CtffindResults,
    CtffindRow,
    parse_ctffind_profiles,
    parse_ctffind_results,
)
from cryolive.adapters.ctffind._run import (
    CtffindNotFoundError,
    CtffindRun,
    CtffindRunError,
    ctffind_answers,
    read_ctffind_output,
    run_ctffind,
)

__all__ = [
    "CtffindNotFoundError",
    "CtffindOutputError",
    "CtffindProfiles",
    "CtffindResults",
    "CtffindRow",
    "CtffindRun",
    "CtffindRunError",
    "ctffind_answers",
    "parse_ctffind_profiles",
    "parse_ctffind_results",
    "read_ctffind_output",
    "run_ctffind",
]
