"""Fixtures of the engine tests: the planted-truth micrograph maker."""

from __future__ import annotations

import importlib.util
import sys
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


def load_picking_truth() -> ModuleType:
    path = Path(__file__).with_name("picking_truth.py")
    spec = importlib.util.spec_from_file_location("cryolive_tests_picking_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def picking_truth() -> ModuleType:
    """The module ``picking_truth``: ``planted_micrograph(rng, …)``, ``projections(…)``."""
    return load_picking_truth()


@pytest.fixture(scope="session")
def ctf_truth() -> ModuleType:
    """The module ``ctf_truth``: ``micrograph(rng, …)``, ``planted_ctf(…)``, ``smooth_map``."""
    return load_ctf_truth()
