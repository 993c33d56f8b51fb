"""The chaos benchmark (``bench/chaos.py``) small enough for the tests: 50 movies in the facility
deployment (MariaDB, RabbitMQ, a process per service) while workers are killed, the broker and
the database go away, and 10 % of the movies are bad (cases of the bad-input corpus). Every good
movie must end with exactly one result per stage, every bad one with one recorded failure, and
nothing may be left queued or open. The outages come from the benchmark's TCP proxies: the
shared servers are never stopped.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from cryolive.simulate import corpus

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


@pytest.fixture(scope="module")
def chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cryolive_bench_chaos", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _echo(connection: socket.socket) -> None:
    with connection:
        while data := connection.recv(1024):
            connection.sendall(data)


def test_the_outage_proxy_cuts_connections_and_refuses_new_ones_for_a_while(
    chaos: ModuleType,
) -> None:
    server, port = _echo_server()
    proxy = chaos.OutageProxy(("127.0.0.1", port))
    try:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        client.sendall(b"ping")
        assert client.recv(16) == b"ping"
        outage = threading.Thread(target=proxy.outage, args=(1.5,))
        outage.start()
        time.sleep(0.3)
        assert client.recv(16) == b""  # the live connection was cut
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        outage.join()
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        again.sendall(b"back")
        assert again.recv(16) == b"back"
        again.close()
        client.close()
    finally:
        proxy.close()
        server.close()


def test_bad_movies_come_from_the_corpus_and_span_its_formats(
    chaos: ModuleType, tmp_path: Path
) -> None:
    session = chaos.stage_session(tmp_path, movies=12, bad_fraction=0.5, seed=1)
    assert len(session.movies) == 12 and len(session.bad) == 6
    assert set(session.bad.values()) <= set(corpus.KINDS) and len(set(session.bad.values())) == 6
    assert {kind.split("_")[0] for kind in session.bad.values()} >= {"tiff", "mrc"}
    for movie, xml in session.movies:
        assert (session.staging / movie).exists() and (session.staging / xml).is_file()


def test_chaos_slow_50_movies_exactly_once_under_kills_and_outages(
    chaos: ModuleType, tmp_path: Path, mariadb_server_url: str, rabbitmq_url: str
) -> None:
    """Slow (about 2-3 min on a loaded 2-core machine): the benchmark at 50 movies."""
    session = chaos.stage_session(tmp_path, movies=50, bad_fraction=0.1, seed=1)
    assert len(set(session.bad.values())) == 5  # five kinds of the bad-input corpus
    faults = chaos.Faults(kill_every_s=12.0, broker_down_s=3.0, db_down_s=10.0)
    result = chaos.run_session(
        session,
        tmp_path,
        faults=faults,
        mariadb=mariadb_server_url,
        rabbitmq=rabbitmq_url,
        timeout_s=300.0,
        # the reconciler's 10 min never come: whatever the faults lose stays lost and fails this
        reconcile_after_s=600.0,
        drain_s=20.0,
        say=lambda _: None,
    )
    table = result.table()
    assert result.finished, table
    assert result.kills >= 3, table
    assert [o.split()[0] for o in sorted(result.outages)] == ["broker", "database"], table
    good = len(result.good)
    for stage in ("Movie", "MotionCorrection", "CTF", "ice", "picker"):
        assert result.per_stage(stage) == (good, 0, 0), f"{stage}\n{table}"
    assert result.bad_failures() == (len(result.bad), 0, 0), table
    assert not result.good_failed(), table
    assert not result.bad_with_results(), table
    assert result.queued == {}, table
    assert result.open_work == 0, table
