"""Fixtures of the engine tests: the planted-truth micrograph maker."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.modules import load_module


def load_ctf_truth() -> ModuleType:
    return load_module(Path(__file__).with_name("ctf_truth.py"), "cryolive_tests_ctf_truth")


def load_picking_truth() -> ModuleType:
    return load_module(Path(__file__).with_name("picking_truth.py"), "cryolive_tests_picking_truth")


@pytest.fixture(scope="session")
def picking_truth() -> ModuleType:
    """The module ``picking_truth``: ``planted_micrograph(rng, …)``, ``projections(…)``."""
    return load_picking_truth()


@pytest.fixture(scope="session")
def ctf_truth() -> ModuleType:
    """The module ``ctf_truth``: ``micrograph(rng, …)``, ``planted_ctf(…)``, ``smooth_map``."""
    return load_ctf_truth()
