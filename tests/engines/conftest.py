"""Fixtures of the engine tests: the planted-truth micrograph maker."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def load_ctf_truth() -> ModuleType:
    path = Path(__file__).with_name("ctf_truth.py")
    spec = importlib.util.spec_from_file_location("cryolive_tests_ctf_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ctf_truth() -> ModuleType:
    """The module ``ctf_truth``: ``micrograph(rng, …)``, ``planted_ctf(…)``, ``smooth_map``."""
    return load_ctf_truth()
