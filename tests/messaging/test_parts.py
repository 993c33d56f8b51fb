"""Smaller parts: bad arguments, the CLI's refusals, logs, registries, the reconciler's limits."""

import json
import logging
import threading
import uuid

import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.messaging import Registry, Service, Worker, envelope_for, load_recipe, open_transport
from cryolive.messaging._amqp import connection_params
from cryolive.messaging.echo import EchoMessage, echo, echo_service
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.messaging.logs import JsonLogFormatter
from cryolive.messaging.recipe import recipe_path
from cryolive.messaging.reconcile import InMemoryLedger, Reconciler
from cryolive.messaging.registry import registry_from
from cryolive.messaging.transport import Delivery

RECIPE = load_recipe(recipe_path("echo-3step"))


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Service("echo", EchoMessage, echo, max_attempts=0)
    with pytest.raises(ValueError, match="retry_base_s"):
        Service("echo", EchoMessage, echo, retry_base_s=5, retry_max_s=1)
    with pytest.raises(ValueError, match="name"):
        Service("", EchoMessage, echo)
    transport = EmbeddedTransport()
    with pytest.raises(ValueError, match="concurrency"):
        Worker(transport, echo_service(), concurrency=0)
    with pytest.raises(ValueError, match="prefetch"):
        Worker(transport, echo_service(), prefetch=0)
    with pytest.raises(ValueError, match="url"):
        open_transport("redis://localhost")
    with pytest.raises(ValueError, match="url"):
        connection_params("amqp://")
    with pytest.raises(ValueError, match="delivery_limit"):
        EmbeddedTransport(delivery_limit=0)
    with pytest.raises(ValueError, match="timeout_s"):
        Reconciler(InMemoryLedger(), transport, timeout_s=0)


def test_amqp_url_is_parsed() -> None:
    params = connection_params("amqp://user:p%40ss@broker.example:5673/cryo")
    assert params["host"] == "broker.example:5673"
    assert (params["userid"], params["password"], params["virtual_host"]) == (
        "user",
        "p@ss",
        "cryo",
    )
    assert connection_params("amqp://h")["virtual_host"] == "/"


def test_registry_rejects_duplicates_and_names_unknown_services() -> None:
    registry = Registry([echo_service()])
    with pytest.raises(ValueError, match="already registered"):
        registry.add(echo_service())
    with pytest.raises(KeyError, match=r"unknown service 'ctf'.*known: echo"):
        registry["ctf"]
    assert list(registry) == ["echo"]
    for spec in ("nocolon", "no_such_module_xyz:f", "cryolive.messaging.echo:nothing"):
        with pytest.raises(ValueError, match="spec"):
            registry_from(spec)
    with pytest.raises(ValueError, match="not a Registry"):
        registry_from("cryolive.messaging.echo:echo_service")
    assert "echo" in registry_from("cryolive.messaging.registry:default_registry")


def test_worker_command_refuses_what_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = CliRunner()
    monkeypatch.setenv("CRYOLIVE_BROKER_URL", "memory://")
    embedded = cli.invoke(build_app(), ["worker", "--service", "echo"])
    assert embedded.exit_code != 0 and "embedded broker" in embedded.output
    monkeypatch.setenv("CRYOLIVE_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    unknown = cli.invoke(build_app(), ["worker", "--service", "nope"])
    assert unknown.exit_code != 0 and "unknown service" in unknown.output


def test_json_log_lines_carry_the_message_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "w", "levelname": "INFO", "msg": "message %s", "args": ("done",),
         "key": "echo:abc", "seconds": 0.25}
    )  # fmt: skip
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "message done"
    assert line["key"] == "echo:abc" and line["seconds"] == 0.25 and line["level"] == "INFO"


def test_message_routed_to_an_undefined_step_is_dead_lettered() -> None:
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    env = envelope_for(RECIPE, "1", {"text": "t"})
    broken = json.loads(env.to_bytes())
    broken["recipe"]["steps"]["1"]["outputs"] = {"default": ["9"]}  # damaged in transit
    settled: list[str] = []
    delivery = Delivery(json.dumps(broken).encode(), {}, 0, lambda: settled.append("ack"), print)
    Worker(transport, echo_service(), queues=["echo.1"]).handle("echo.1", delivery)
    (dead,) = transport.dead_letters("echo.1")
    assert "undefined steps ['9']" in dead.reason and settled == ["ack"]


def test_reconciler_gives_up_after_max_dispatches(caplog: pytest.LogCaptureFixture) -> None:
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    ledger = InMemoryLedger()
    env = envelope_for(RECIPE, "1", {"text": "lost"})
    ledger.expect(env, "echo.1", now=0.0)
    now = [0.0]
    reconciler = Reconciler(ledger, transport, timeout_s=10, max_dispatches=3, clock=lambda: now[0])
    sent = []
    for _ in range(5):
        now[0] += 11
        sent += reconciler.run_once()
        transport.purge("echo.1")  # lost again (a queue still holding it is not re-sent to)
    assert sent == [env.key, env.key]  # dispatches 2 and 3; then it needs a person
    assert "still missing after 3 dispatches" in caplog.text


@pytest.mark.parametrize("backlog", ["echo.1", "echo.3"])  # the work's own queue, a later step's
def test_reconciler_does_not_multiply_a_backlog(backlog: str) -> None:
    """Overdue work waiting behind a backlog that a consumer works through is not lost: it is
    re-sent only once the queues have caught up (found by bench/chaos.py: 500 movies landing at
    once, the reconciler re-sent every one still queued after 10 min)."""
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    ledger = InMemoryLedger()
    envelopes = [envelope_for(RECIPE, "1", {"text": f"m{i}"}) for i in range(3)]
    for env in envelopes:
        ledger.expect(env, "echo.1", now=0.0)
        transport.publish(backlog, env.to_bytes())
    now = [61.0]
    reconciler = Reconciler(ledger, transport, timeout_s=60, clock=lambda: now[0])
    stop, taken, release = threading.Event(), threading.Event(), threading.Event()

    def slow(delivery: Delivery) -> None:  # a busy worker: one message in hand, two ready
        taken.set()
        release.wait(10)
        delivery.ack()

    consumer = threading.Thread(
        target=transport.consume, args=(backlog, slow), kwargs={"prefetch": 1, "stop": stop}
    )
    consumer.start()
    try:
        assert taken.wait(10)
        assert transport.stats(backlog).ready == 2
        assert reconciler.run_once() == []  # waiting, not lost
        assert transport.depth("echo.1") == (2 if backlog == "echo.1" else 0)
    finally:
        stop.set()
        release.set()
        consumer.join(10)
    transport.purge(backlog)  # now the waiting work is lost: re-sent on the next pass
    now[0] += 61
    assert sorted(reconciler.run_once()) == sorted(env.key for env in envelopes)


def test_a_result_that_cannot_be_sent_is_dead_lettered_with_the_reason() -> None:
    from pydantic import BaseModel

    class Raw(BaseModel):
        data: bytes

    def handler(message: EchoMessage, context: object) -> Raw:
        return Raw(data=b"\xff\xfe")  # not UTF-8: cannot travel as JSON

    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    env = envelope_for(RECIPE, "1", {"text": "t"})
    acks: list[str] = []
    delivery = Delivery(env.to_bytes(), {}, 0, lambda: acks.append("ack"), print)
    worker = Worker(transport, Service("echo", EchoMessage, handler), queues=["echo.1"])
    worker.handle("echo.1", delivery)
    assert acks == ["ack"]
    (dead,) = transport.dead_letters("echo.1")
    assert "sending the done outcome failed" in dead.reason and "utf-8" in dead.reason.lower()
    assert transport.depth("echo.2") == 0
