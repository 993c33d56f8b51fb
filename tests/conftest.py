"""Shared fixtures. A test that needs a service (MariaDB, RabbitMQ) skips locally when the
service is absent, and fails in CI (``CI`` set), where ``.ci/run`` starts every service."""

from __future__ import annotations

import os

import pytest


def need_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (in CI) a test whose service is not reachable."""
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but not reachable: {reason}")
    pytest.skip(f"{name} not reachable: {reason}")
