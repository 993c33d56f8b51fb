"""Shared fixtures. A test that needs a service (MariaDB, RabbitMQ) skips locally when the
service is absent, and fails in CI (``CI`` set), where ``.ci/run`` starts every service.

Test modules do not import from here (pytest runs in importlib mode): they ask for the
fixtures ``rabbitmq_url`` and ``mariadb_server_url`` by name, or call ``need_service``
through the ``need_service`` fixture.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

RABBITMQ_URL = os.environ.get("CRYOLIVE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
MARIADB_SERVER_URL = os.environ.get("CRYOLIVE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _need_service(name: str, reason: str) -> None:
    """Skip (locally) or fail (in CI) a test whose service is not reachable."""
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but not reachable: {reason}")
    pytest.skip(f"{name} not reachable: {reason}")


@pytest.fixture(scope="session")
def need_service() -> Callable[[str, str], None]:
    return _need_service


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """AMQP URL of a running RabbitMQ (guest/guest on 127.0.0.1:5672 by default)."""
    if not _reachable("127.0.0.1", 5672):
        _need_service("RabbitMQ", "nothing listens on 127.0.0.1:5672")
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def mariadb_server_url() -> str:
    """SQLAlchemy URL of a running MariaDB server, without a database name."""
    if not _reachable("127.0.0.1", 3306):
        _need_service("MariaDB", "nothing listens on 127.0.0.1:3306")
    return MARIADB_SERVER_URL


# Markers, applied here from what a test uses, so that no test has to remember them:
# `make test-fast` deselects everything that needs a server, a browser, RELION or minutes.
_SERVER_PARAMS = {"mariadb": "mariadb", "rabbitmq": "rabbitmq"}
_FIXTURE_MARKERS = {
    "mariadb_server_url": "mariadb",
    "mariadb_url": "mariadb",
    "rabbitmq_url": "rabbitmq",
    "chromium": "browser",
    "browser": "browser",
}
# Whole modules that take minutes on this 2-core machine (measured with --durations).
_SLOW_PATHS = ("tests/pipeline/", "tests/adapters/relion_", "tests/engines/class2d/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names: set[str] = set()
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            names |= {
                _SERVER_PARAMS[v]
                for v in callspec.params.values()
                if isinstance(v, str) and v in _SERVER_PARAMS
            }
        names |= {
            _FIXTURE_MARKERS[f] for f in getattr(item, "fixturenames", ()) if f in _FIXTURE_MARKERS
        }
        path = item.nodeid.replace("\\", "/")
        if "relion" in path.lower():
            names.add("relion")
        if path.startswith(_SLOW_PATHS):
            names.add("slow")
        for name in sorted(names):
            item.add_marker(name)
