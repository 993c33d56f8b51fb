"""Fixtures of the adapter tests (the programs cryolive runs: CTFFIND, RELION)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ctffind5_dir(need_service: Callable[[str, str], None]) -> Path:
    """Real CTFFIND 5.0.2 output (shared data, at <repo>/../shared/data/ctffind5)."""
    repo = Path(__file__).resolve().parents[2]
    folder = repo.parent / "shared" / "data" / "ctffind5"
    if not folder.is_dir():
        need_service("shared CTFFIND 5 data", f"not at {folder}")
    return folder
