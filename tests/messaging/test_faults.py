"""Fault tests on RabbitMQ: a killed worker, a restarted broker."""

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cryolive.messaging import Context, Recipe, Service, Worker, open_transport, start_recipe
from cryolive.messaging.echo import EchoMessage, EchoResult, echo
from cryolive.messaging.rabbitmq import RabbitTransport

# A service whose effect is a row keyed by the idempotency key (the writer's upsert), and
# which keeps working after the effect, so a worker can be killed with the effect done but
# the message not yet acknowledged.
EFFECT_SERVICES = """
import os, sqlite3, time
from pydantic import BaseModel
from cryolive.messaging import Context, Registry, Service

class Hold(BaseModel):
    text: str
    hold_s: float

def handle(message: Hold, context: Context) -> None:
    db = sqlite3.connect(os.environ["EFFECT_DB"], isolation_level=None, timeout=10)
    db.execute("insert into attempts values (?, ?, ?)", (context.key, message.text, os.getpid()))
    db.execute("insert or ignore into effects values (?, ?)", (context.key, message.text))
    db.close()
    time.sleep(message.hold_s)

def registry() -> Registry:
    return Registry([Service("effect", Hold, handle)])
"""

EFFECT_RECIPE = Recipe.model_validate(
    {
        "name": "effect",
        "start": ["1"],
        "steps": {
            "1": {
                "service": "effect",
                "queue": "effect",
                "parameters": {"text": "{text}", "hold_s": 1.5},
            }
        },
    }
)


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def rabbit(rabbitmq_url: str) -> Iterator[RabbitTransport]:
    transport = RabbitTransport(
        rabbitmq_url, prefix=f"fault-{uuid.uuid4().hex[:8]}.", delivery_limit=5
    )
    yield transport
    transport.delete_declared()
    transport.close()


def test_killed_worker_message_is_redelivered_and_takes_effect_once(
    rabbit: RabbitTransport, rabbitmq_url: str, tmp_path: Path
) -> None:
    (tmp_path / "effect_services.py").write_text(EFFECT_SERVICES)
    effects = tmp_path / "effects.sqlite"
    with sqlite3.connect(effects) as db:
        db.execute("create table attempts(key text, text text, pid int)")
        db.execute("create table effects(key text primary key, text text)")
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "EFFECT_DB": str(effects),
        "CRYOLIVE_BROKER_URL": rabbitmq_url,
        "CRYOLIVE_BROKER_PREFIX": rabbit._prefix,
        "CRYOLIVE_BROKER_DELIVERY_LIMIT": "5",
    }
    command = [
        sys.executable, "-c", "from cryolive.cli import main; main()", "worker",
        "--registry", "effect_services:registry", "--service", "effect", "--queue", "effect",
    ]  # fmt: skip

    def rows(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(effects, timeout=10) as db:
            return db.execute(sql).fetchall()

    start_recipe(rabbit, EFFECT_RECIPE, {"text": "m1"})
    first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(rows("select * from attempts")) == 1)
        first.send_signal(signal.SIGKILL)  # effect written, message not yet acknowledged
        first.wait(10)
    finally:
        first.kill()
    second = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(rows("select * from attempts")) == 2)
        start_recipe(rabbit, EFFECT_RECIPE, {"text": "m2"})
        wait_for(lambda: len(rows("select * from attempts where text = 'm2'")) == 1)
        second.send_signal(signal.SIGTERM)  # in the middle of m2: finish it, then exit
        assert second.wait(20) == 0
    finally:
        second.kill()
    attempts = rows("select key, text, pid from attempts order by rowid")
    assert [a[1] for a in attempts] == ["m1", "m1", "m2"]  # m1 redelivered after the kill
    assert attempts[0][0] == attempts[1][0] and attempts[0][2] != attempts[1][2]
    assert rows("select text from effects order by text") == [("m1",), ("m2",)]  # once each
    assert rabbit.depth("effect") == 0  # both acknowledged: m2 finished despite SIGTERM
    assert rabbit.dead_letters("effect") == []


def _port_open() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


def _restart_rabbitmq() -> None:
    try:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
        time.sleep(1.0)
    finally:  # leave the broker running, whatever happened
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=60)
        wait_for(_port_open, timeout_s=60)


def test_rabbitmq_restart_during_a_run_loses_nothing(
    rabbitmq_url: str, caplog: pytest.LogCaptureFixture, keyed_results: Callable[[], Any]
) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "one-hop",
            "start": ["1"],
            "steps": {"1": {"service": "echo", "queue": "hop", "parameters": {"text": "{text}"}}},
        }
    )
    transport = open_transport(rabbitmq_url, prefix=f"restart-{uuid.uuid4().hex[:8]}.")
    sink = keyed_results()

    def record(message: EchoMessage, context: Context) -> EchoResult:
        sink.put(context.key, {"text": message.text})
        return echo(message, context)

    worker = Worker(
        transport, Service("echo", EchoMessage, record), queues=["hop"], concurrency=2, prefetch=20
    )
    published: list[str] = []
    errors: list[BaseException] = []

    def publish_all() -> None:
        try:
            for i in range(2000):
                start_recipe(transport, recipe, {"text": f"m{i}"})
                published.append(f"m{i}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    publisher = threading.Thread(target=publish_all)
    caplog.set_level(logging.WARNING, logger="cryolive.messaging.rabbitmq")
    worker.start()
    try:
        publisher.start()
        wait_for(lambda: len(published) >= 500)
        _restart_rabbitmq()
        publisher.join(120)
        wait_for(lambda: len(sink) == 2000, timeout_s=90)
    finally:
        if not _port_open():
            subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=60)
        worker.stop()
        transport.delete_declared()
        transport.close()
    assert errors == []
    assert len(published) == 2000
    reconnects = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert any(m.startswith("publisher") for m in reconnects)  # the restart really hit both
    assert sum(m.startswith("consumer") for m in reconnects) >= 2
    assert {v["text"] for k in sink.stored_keys() if (v := sink.get(k))} == set(published)
