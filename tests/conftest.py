"""Shared fixtures. A test that needs a service (MariaDB, RabbitMQ) skips locally when the
service is absent, and fails in CI (``CI`` set), where ``.ci/run`` starts every service.

Test modules do not import from here (pytest runs in importlib mode): they ask for the
fixtures ``rabbitmq_url`` and ``mariadb_server_url`` by name, or call ``need_service``
through the ``need_service`` fixture.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

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


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A running Slurm with a node: its name. In CI ``.ci/run`` has started it; by hand,
    ``.ci/slurm-up`` starts a single-node one when none answers (as root, with slurm-wlm and
    munge installed), and the tests skip when it cannot."""
    if shutil.which("sbatch") is None:
        _need_service("Slurm", "sbatch is not on PATH (make tools installs slurm-wlm)")
    if not os.environ.get("CI"):
        script = Path(__file__).resolve().parents[1] / ".ci" / "slurm-up"
        up = subprocess.run([str(script)], capture_output=True, text=True, timeout=120, check=False)
        if up.returncode != 0:
            _need_service("Slurm", f".ci/slurm-up failed: {up.stderr.strip()[-500:]}")
    nodes = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not nodes:
        _need_service("Slurm", "sinfo lists no node")
    return nodes[0]


# Markers, applied here from what a test uses, so that no test has to remember them:
# `make test-fast` deselects everything that needs a server, a browser, RELION or minutes.
_SERVER_PARAMS = {"mariadb": "mariadb", "rabbitmq": "rabbitmq"}
_FIXTURE_MARKERS = {
    "mariadb_server_url": "mariadb",
    "mariadb_url": "mariadb",
    "rabbitmq_url": "rabbitmq",
    "chromium": "browser",
    "browser": "browser",
    "slurm_cluster": "slurm",
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


def _square_targets_xml(square: int, holes: dict[int, tuple[float, float, float]]) -> str:
    """A ``Metadata/GridSquare_<id>.dm`` as EPU writes it (.NET data-contract XML), with the
    foil holes ``{id: (centre x px, centre y px, diameter px)}``; stage X = id nm, Y = -id nm."""
    ns = (
        'xmlns="http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/"'
    )
    common = 'xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types"'
    arrays = 'xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays"'
    generic = 'xmlns:b="http://schemas.datacontract.org/2004/07/System.Collections.Generic"'
    drawing = 'xmlns:c="http://schemas.datacontract.org/2004/07/System.Drawing"'
    shared = 'xmlns:c="http://schemas.datacontract.org/2004/07/Fei.SharedObjects"'
    pairs = "".join(
        f"<b:KeyValuePairOfintTargetLocationXmlBpEWF4JT><b:key>{hole}</b:key><b:value>"
        f"<Id {common}>{hole}</Id><GridSquareId>{square}</GridSquareId>"
        f"<PixelCenter {drawing}><c:x>{x}</c:x><c:y>{y}</c:y></PixelCenter>"
        f"<PixelWidthHeight {drawing}><c:height>{d}</c:height><c:width>{d}</c:width>"
        f"</PixelWidthHeight><Selected>true</Selected>"
        f"<StagePosition {shared}><c:A>0</c:A><c:B>0</c:B><c:X>{hole * 1e-9}</c:X>"
        f"<c:Y>{-hole * 1e-9}</c:Y><c:Z>0</c:Z></StagePosition><State>Completed</State>"
        f"</b:value></b:KeyValuePairOfintTargetLocationXmlBpEWF4JT>"
        for hole, (x, y, d) in holes.items()
    )
    return (
        f'<GridSquareXml z:Id="1" {ns}><Id {common}>{square}</Id>'
        f"<AtlasNodeId>{square}</AtlasNodeId>"
        f'<Position xmlns:a="http://schemas.datacontract.org/2004/07/Fei.SharedObjects">'
        f"<a:A>0</a:A><a:B>0</a:B><a:X>-4.9E-05</a:X><a:Y>-0.000562</a:Y><a:Z>0</a:Z></Position>"
        f'<TargetLocations z:Id="8"><Id {common}>1</Id><GridSquareId>{square}</GridSquareId>'
        f'<TargetLocations i:nil="true" {arrays}/><TargetLocationsEfficient {arrays}>'
        f"<a:m_keyRehashCount>0</a:m_keyRehashCount><a:m_serializationArray {generic}>{pairs}"
        f"</a:m_serializationArray></TargetLocationsEfficient></TargetLocations></GridSquareXml>"
    )


@pytest.fixture(scope="session")
def square_targets_xml() -> Callable[[int, dict[int, tuple[float, float, float]]], str]:
    """Writes the text of EPU's ``Metadata/GridSquare_<id>.dm`` (see ``_square_targets_xml``)."""
    return _square_targets_xml
