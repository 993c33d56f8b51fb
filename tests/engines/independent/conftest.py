"""Fixture of the cryojax-made tests: the generator module ``cryojax_data``."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

# cryojax is in the dev extra: a missing cryojax is an error here, never a skip
import cryojax  # noqa: F401
import pytest

from tests.modules import load_module


def load_cryojax_data() -> ModuleType:
    return load_module(Path(__file__).with_name("cryojax_data.py"), "cryolive_tests_cryojax_data")


@pytest.fixture(scope="session")
def cj() -> ModuleType:
    """The module ``cryojax_data``: ``micrograph(rng, …)``, ``movie(rng, …)``, ``drift_rmse``."""
    return load_cryojax_data()
