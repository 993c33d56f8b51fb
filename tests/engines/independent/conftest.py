"""Fixture of the cryojax-made tests: the generator module ``cryojax_data``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

# cryojax is in the dev extra: a missing cryojax is an error here, never a skip
import cryojax  # noqa: F401
import pytest


def load_cryojax_data() -> ModuleType:
    path = Path(__file__).with_name("cryojax_data.py")
    spec = importlib.util.spec_from_file_location("cryolive_tests_cryojax_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cj() -> ModuleType:
    """The module ``cryojax_data``: ``micrograph(rng, …)``, ``movie(rng, …)``, ``drift_rmse``."""
    return load_cryojax_data()
