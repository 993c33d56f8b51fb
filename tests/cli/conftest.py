"""Fixtures of the CLI tests: the planted-truth micrograph maker of the engine tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def ctf_truth() -> ModuleType:
    """``tests/engines/ctf_truth.py``: ``micrograph(rng, …)`` with a planted CTF and ice."""
    path = Path(__file__).resolve().parents[1] / "engines" / "ctf_truth.py"
    spec = importlib.util.spec_from_file_location("cryolive_tests_ctf_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def picking_truth() -> ModuleType:
    """``tests/engines/picking_truth.py``: ``planted_micrograph(rng, …)`` with known particles."""
    path = Path(__file__).resolve().parents[1] / "engines" / "picking_truth.py"
    spec = importlib.util.spec_from_file_location("cryolive_tests_cli_picking_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
