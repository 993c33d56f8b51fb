"""Fixtures of the post-processing tests: the module ``halfmaps`` (half maps with a planted
B-factor) and its default pair."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load() -> ModuleType:
    path = Path(__file__).with_name("halfmaps.py")
    spec = importlib.util.spec_from_file_location("cryolive_tests_halfmaps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def halfmaps() -> ModuleType:
    """``make_halves(bfactor_a2, noise, seed)``, ``blur``, ``point_atoms``."""
    return _load()


@pytest.fixture(scope="session")
def halves(halfmaps: ModuleType) -> Any:
    """B = 100 Å², noise 3x the map's standard deviation (resolution about 4 Å)."""
    return halfmaps.make_halves(100.0, 3.0)
