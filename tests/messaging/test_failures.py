"""The error family decides a failed message's fate: bad input is recorded once and settled, a
bug is dead-lettered and recorded, a transient failure is retried; the reconciler never grows a
backlog; a worker drops the messages of cancelled work."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cryolive.errors import BadInputError, InternalError, RetryableError
from cryolive.messaging import Context, Emit, Service, Worker, envelope_for, load_recipe
from cryolive.messaging.echo import EchoMessage, EchoResult
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.messaging.envelope import Envelope
from cryolive.messaging.recipe import recipe_path
from cryolive.messaging.reconcile import InMemoryLedger, Reconciler
from cryolive.messaging.transport import Delivery

RECIPE = load_recipe(recipe_path("echo-3step"))


def _record(parameters: Mapping[str, Any], stage: str, error: BaseException) -> Sequence[Emit]:
    """A failure record sent on the step's default output (step 2 stands in for the writer)."""
    return [Emit("default", EchoResult(text=f"{stage} failed: {error}", hops=99))]


def _service(error: Exception) -> Service[EchoMessage]:
    def handler(message: EchoMessage, context: Context) -> EchoResult:
        raise error

    return Service("echo", EchoMessage, handler, max_attempts=3, on_failure=_record)


def _handle(service: Service[EchoMessage], *, attempt: int = 0) -> EmbeddedTransport:
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    env = envelope_for(RECIPE, "1", {"text": "movie.tiff"}).model_copy(update={"attempt": attempt})
    settled: list[str] = []
    delivery = Delivery(env.to_bytes(), {}, 0, lambda: settled.append("ack"), print)
    Worker(transport, service, queues=["echo.1"]).handle("echo.1", delivery)
    assert settled == ["ack"]
    return transport


def _sent(transport: EmbeddedTransport, queue: str) -> list[Envelope]:
    return [Envelope.from_bytes(body) for body in _drain(transport, queue)]


def _drain(transport: EmbeddedTransport, queue: str) -> list[bytes]:
    import threading

    bodies: list[bytes] = []
    stop = threading.Event()

    def take(delivery: Delivery) -> None:
        bodies.append(delivery.body)
        delivery.ack()
        if transport.depth(queue) == 0:
            stop.set()

    if transport.depth(queue):
        transport.consume(queue, take, prefetch=1, stop=stop)
    return bodies


def test_bad_input_is_recorded_once_and_not_dead_lettered_or_retried() -> None:
    transport = _handle(_service(BadInputError("movie.tiff: truncated")))
    assert transport.dead_letters("echo.1") == []
    assert transport.depth("echo.1") == 0  # no retry
    (record,) = _sent(transport, "echo.2")
    assert record.payload["text"] == "echo failed: movie.tiff: truncated"


def test_a_plain_value_error_subclass_of_the_family_counts_as_bad_input() -> None:
    from cryolive.io import MovieReadError

    transport = _handle(_service(MovieReadError("/v/movie.eer", "not an EER file")))
    assert transport.dead_letters("echo.1") == [] and transport.depth("echo.2") == 1


def test_an_internal_error_is_dead_lettered_at_once_and_recorded() -> None:
    transport = _handle(_service(InternalError("a bug")))
    (dead,) = transport.dead_letters("echo.1")
    assert "InternalError: a bug" in dead.reason
    assert transport.depth("echo.1") == 0 and transport.depth("echo.2") == 1


def test_a_retryable_error_is_retried_then_dead_lettered_and_recorded() -> None:
    transport = _handle(_service(RetryableError("database down")))
    assert transport.dead_letters("echo.1") == [] and transport.depth("echo.2") == 0
    last = _handle(_service(RetryableError("database down")), attempt=2)  # max_attempts=3
    (dead,) = last.dead_letters("echo.1")
    assert "failed 3 attempts" in dead.reason and last.depth("echo.2") == 1


def test_an_unknown_exception_past_its_attempts_is_recorded_too() -> None:
    transport = _handle(_service(ValueError("struct.error leaked")), attempt=2)
    assert len(transport.dead_letters("echo.1")) == 1 and transport.depth("echo.2") == 1


def test_without_a_failure_hook_bad_input_is_dead_lettered() -> None:
    def handler(message: EchoMessage, context: Context) -> EchoResult:
        raise BadInputError("bad")

    transport = _handle(Service("echo", EchoMessage, handler))
    assert len(transport.dead_letters("echo.1")) == 1 and transport.depth("echo.2") == 0


def test_a_worker_drops_the_messages_of_cancelled_work() -> None:
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    handled: list[str] = []

    def handler(message: EchoMessage, context: Context) -> EchoResult:
        handled.append(message.text)
        return EchoResult(text=message.text, hops=1)

    worker = Worker(
        transport,
        Service("echo", EchoMessage, handler),
        queues=["echo.1"],
        cancelled=lambda env: env.parameters.get("text") == "stopped",
    )
    settled: list[str] = []
    for text in ("stopped", "kept"):
        body = envelope_for(RECIPE, "1", {"text": text}).to_bytes()
        worker.handle("echo.1", Delivery(body, {}, 0, lambda: settled.append("ack"), print))
    assert settled == ["ack", "ack"]
    assert handled == ["kept"] and worker.dropped == 1
    assert transport.dead_letters("echo.1") == [] and transport.depth("echo.2") == 1


def _lost(n: int) -> tuple[InMemoryLedger, EmbeddedTransport, list[str]]:
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    ledger = InMemoryLedger()
    keys = []
    for i in range(n):
        env = envelope_for(RECIPE, "1", {"text": f"m{i}"})
        ledger.expect(env, "echo.1", now=0.0)
        keys.append(env.key)
    return ledger, transport, keys


def test_the_reconciler_does_not_resend_work_while_its_queues_hold_a_backlog() -> None:
    ledger, transport, keys = _lost(3)
    for _ in range(5):  # a backlog downstream: the work may well be in it
        transport.publish("echo.2", b"{}")
    now = [100.0]
    reconciler = Reconciler(ledger, transport, timeout_s=10, clock=lambda: now[0])
    assert reconciler.run_once() == []
    _drain(transport, "echo.2")
    assert sorted(reconciler.run_once()) == sorted(keys)
    now[0] += 100  # overdue again, but the re-sent messages still wait in echo.1
    assert reconciler.run_once() == []
    assert transport.depth("echo.1") == 3


def test_the_reconciler_resends_at_most_a_batch_per_pass() -> None:
    ledger, transport, _ = _lost(7)
    reconciler = Reconciler(ledger, transport, timeout_s=10, batch=3, clock=lambda: 100.0)
    assert len(reconciler.run_once()) == 3
    assert transport.depth("echo.1") == 3


@pytest.mark.parametrize("error", [BadInputError("x"), RetryableError("x"), InternalError("x")])
def test_the_family_has_one_base(error: Exception) -> None:
    from cryolive.errors import ProcessingError

    assert isinstance(error, ProcessingError)


def test_cryolive_dlq_lists_the_embedded_brokers_dead_letters_from_another_process(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from cryolive.cli import build_app

    pipeline = EmbeddedTransport(f"memory://{uuid.uuid4().hex}", journal=tmp_path / "dead-letters")
    body = envelope_for(RECIPE, "1", {"text": "lost"}).to_bytes()
    pipeline.dead_letter("echo.1", body, reason="InternalError: a bug")
    env = {"CRYOLIVE_DATA_ROOT": str(tmp_path), "CRYOLIVE_BROKER_URL": "memory://cli"}
    listed = CliRunner().invoke(build_app(), ["dlq", "list", "echo.1"], env=env)
    assert listed.exit_code == 0 and "InternalError: a bug" in listed.output, listed.output
    again = CliRunner().invoke(build_app(), ["dlq", "reinject", "echo.1", "--all"], env=env)
    assert again.exit_code != 0 and "pipeline's process" in again.output
    purged = CliRunner().invoke(build_app(), ["dlq", "purge", "echo.1", "--yes"], env=env)
    assert purged.exit_code == 0 and "purged 1" in purged.output
    assert pipeline.dead_letters("echo.1") == []  # the journal decides
