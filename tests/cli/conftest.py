"""Fixtures of the CLI tests: the planted-truth micrograph maker of the engine tests."""

from __future__ import annotations

import importlib.util
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
