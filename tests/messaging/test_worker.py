"""The messaging suite, run on both backends (``transport`` is parametrised in conftest)."""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.messaging import Context, Service, Transport, Worker, load_recipe, start_recipe
from cryolive.messaging.dlq import list_dead, purge_dead
from cryolive.messaging.echo import EchoMessage, EchoResult, echo
from cryolive.messaging.recipe import recipe_path
from cryolive.messaging.reconcile import InMemoryLedger, Reconciler

RECIPE = load_recipe(recipe_path("echo-3step"))


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@contextmanager
def running(*workers: Worker) -> Iterator[None]:
    for w in workers:
        w.start()
    try:
        yield
    finally:
        for w in workers:
            w.stop()


def recording(sink: Any) -> Callable[[EchoMessage, Context], EchoResult]:
    """The echo handler, recording each result in ``sink`` (a ``KeyedResults``) by work key."""

    def handler(message: EchoMessage, context: Context) -> EchoResult:
        result = echo(message, context)
        sink.put(context.key, result.model_dump())
        return result

    return handler


@pytest.mark.parametrize("prefetch", [1, 10])
def test_three_step_recipe_delivers_every_message_once(
    transport: Transport,
    prefetch: int,
    keyed_results: Callable[[], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = keyed_results()
    relay = Worker(
        transport,
        Service("echo", EchoMessage, echo),
        queues=["echo.1", "echo.2"],
        prefetch=prefetch,
    )
    last = Worker(
        transport,
        Service("echo", EchoMessage, recording(sink)),
        queues=["echo.3"],
        prefetch=prefetch,
    )
    with running(relay, last):
        sent = [start_recipe(transport, RECIPE, {"text": f"movie-{i}"})[0] for i in range(30)]
        wait_for(lambda: len(sink) == 30)
    values = [sink.get(k) for k in sink.stored_keys()]
    assert sorted(v["text"] for v in values if v) == sorted(f"movie-{i}" for i in range(30))
    assert {v["hops"] for v in values if v} == {3}
    # Delivery is at least once: a batch the broker refuses (RabbitMQ nacks a publish to a
    # quorum queue whose leader is still being elected, as when two threads declare it at the
    # same moment) is redone, and the writer's keys absorb the repeat. Without a refusal, no
    # message is handled twice.
    refused = any("reconnecting after MessageNacked" in r.getMessage() for r in caplog.records)
    assert sink.duplicates == 0 or (refused and sink.duplicates <= 2 * prefetch)
    assert len({e.key for e in sent}) == 30
    done = relay.metrics_registry.get_sample_value(
        "cryolive_messages_total", {"service": "echo", "outcome": "done"}
    )
    assert done == 60 if not refused else done >= 60


def test_failure_is_retried_with_backoff_then_succeeds(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    tries: list[tuple[int, float]] = []

    def flaky(message: EchoMessage, context: Context) -> EchoResult:
        tries.append((context.attempt, time.monotonic()))
        if context.attempt < 2:
            raise RuntimeError("scratch disk full")
        return echo(message, context)

    service = Service("echo", EchoMessage, flaky, max_attempts=4, retry_base_s=0.2)
    with caplog.at_level(logging.INFO), running(Worker(transport, service, queues=["echo.1"])):
        start_recipe(transport, RECIPE, {"text": "x"})
        wait_for(lambda: transport.depth("echo.2") == 1)
    assert [a for a, _ in tries] == [0, 1, 2]
    assert tries[1][1] - tries[0][1] >= 0.2 - 0.02  # backoff 0.2 s, then 0.4 s
    assert tries[2][1] - tries[1][1] >= 0.4 - 0.02
    retried = [r for r in caplog.records if getattr(r, "outcome", "") == "retry"]
    assert len(retried) == 2 and "scratch disk full" in retried[0].reason  # type: ignore[attr-defined]
    assert list_dead(transport, "echo.1") == []


def test_always_failing_message_is_dead_lettered_then_reinjected(
    transport: Transport,
    broker_url: str,
    queue_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    keyed_results: Callable[[], Any],
) -> None:
    calls: list[int] = []

    def broken(message: EchoMessage, context: Context) -> EchoResult:
        calls.append(context.attempt)
        raise OSError(f"gain reference unreadable for {message.text}")

    service = Service("echo", EchoMessage, broken, max_attempts=3, retry_base_s=0.05)
    with running(Worker(transport, service, queues=["echo.1"])):
        start_recipe(transport, RECIPE, {"text": "m7"})
        wait_for(lambda: len(list_dead(transport, "echo.1")) == 1)
    assert calls == [0, 1, 2]
    (dead,) = list_dead(transport, "echo.1")
    assert "gain reference unreadable for m7" in dead.reason
    assert "failed 3 attempts" in dead.reason
    assert dead.attempt == 2

    monkeypatch.setenv("CRYOLIVE_BROKER_URL", broker_url)
    monkeypatch.setenv("CRYOLIVE_BROKER_PREFIX", queue_prefix)
    cli = CliRunner()
    listed = cli.invoke(build_app(), ["dlq", "list", "echo.1"])
    assert listed.exit_code == 0, listed.output
    assert dead.message_id in listed.output and "gain reference" in listed.output
    shown = cli.invoke(build_app(), ["dlq", "show", "echo.1", dead.message_id])
    assert shown.exit_code == 0 and '"text": "m7"' in shown.output
    refused = cli.invoke(build_app(), ["dlq", "reinject", "echo.1"])
    assert refused.exit_code != 0 and "--all" in refused.output
    back = cli.invoke(build_app(), ["dlq", "reinject", "echo.1", "--id", dead.message_id])
    assert back.exit_code == 0 and "reinjected 1" in back.output
    assert list_dead(transport, "echo.1") == []

    healed = keyed_results()
    fixed = Service("echo", EchoMessage, recording(healed))
    with running(Worker(transport, fixed, queues=["echo.1"])):
        wait_for(lambda: len(healed) == 1)
    assert healed.get(dead.key) == {"text": "m7", "hops": 1}  # same key, first attempt again
    assert cli.invoke(build_app(), ["dlq", "purge", "echo.1"]).exit_code != 0  # needs --yes


def test_bad_messages_are_dead_lettered_at_once(
    transport: Transport, broker_url: str, queue_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def handler(message: EchoMessage, context: Context) -> EchoResult:
        calls.append(message.text)
        return echo(message, context)

    worker = Worker(transport, Service("echo", EchoMessage, handler), queues=["echo.2"])
    with running(worker):
        transport.publish("echo.2", b"not json at all")
        start_recipe(transport, RECIPE.model_copy(update={"start": ["2"]}), {"text": "t"})
        bad_type = RECIPE.model_copy(update={"start": ["2"]})
        start_recipe(transport, bad_type, {"text": "t", "hops": "several"})
        wait_for(lambda: len(list_dead(transport, "echo.2")) == 3)
    reasons = " | ".join(d.reason for d in list_dead(transport, "echo.2"))
    assert "no value for placeholder 'hops'" in reasons
    assert "do not fit 'echo'" in reasons and "several" in reasons
    assert "not a cryolive envelope" in reasons
    assert calls == []
    monkeypatch.setenv("CRYOLIVE_BROKER_URL", broker_url)
    monkeypatch.setenv("CRYOLIVE_BROKER_PREFIX", queue_prefix)
    purged = CliRunner().invoke(build_app(), ["dlq", "purge", "echo.2", "--yes"])
    assert purged.exit_code == 0 and "purged 3" in purged.output
    assert list_dead(transport, "echo.2") == []
    assert purge_dead(transport, "echo.2") == 0


def test_stop_finishes_the_message_in_hand_and_leaves_the_rest(transport: Transport) -> None:
    entered, release = threading.Event(), threading.Event()
    done: list[str] = []

    def slow(message: EchoMessage, context: Context) -> EchoResult:
        entered.set()
        release.wait(10)
        done.append(message.text)
        return echo(message, context)

    worker = Worker(transport, Service("echo", EchoMessage, slow), queues=["echo.1"], prefetch=3)
    for i in range(4):
        start_recipe(transport, RECIPE, {"text": f"m{i}"})
    worker.start()
    assert entered.wait(10)
    worker.request_stop()
    release.set()
    worker.stop()
    assert done == ["m0"]
    assert transport.depth("echo.2") == 1  # its result was sent on before the ack
    wait_for(lambda: transport.depth("echo.1") == 3)  # the prefetched rest went back


def test_requeued_past_delivery_limit_goes_to_dead_letters(transport: Transport) -> None:
    counts: list[int] = []
    stop = threading.Event()

    def never_settles(delivery: object) -> None:
        counts.append(getattr(delivery, "delivery_count", -1))

    transport.publish("crashy", b"poison")
    thread = threading.Thread(
        target=transport.consume,
        args=("crashy", never_settles),
        kwargs={"prefetch": 1, "stop": stop},
    )
    thread.start()
    wait_for(lambda: len(transport.dead_letters("crashy")) == 1)
    stop.set()
    thread.join()
    assert counts == [0, 1, 2]  # delivery_limit=2: three deliveries, then dead-lettered
    (dead,) = transport.dead_letters("crashy")
    assert dead.body == b"poison" and "delivery_limit" in dead.reason


def test_reconciler_resends_lost_work_and_nothing_else(
    transport: Transport, keyed_results: Callable[[], Any]
) -> None:
    now = [1000.0]
    ledger = InMemoryLedger()
    for i in range(3):
        (env,) = start_recipe(transport, RECIPE, {"text": f"m{i}"})
        ledger.expect(env, RECIPE.steps["1"].queue, now=now[0])
    keys = sorted(ledger.pending())
    transport.purge("echo.1")  # the broker lost all three
    ledger.complete(keys[0])  # ... but one result had already reached the database
    reconciler = Reconciler(ledger, transport, timeout_s=60, clock=lambda: now[0])
    now[0] += 59
    assert reconciler.run_once() == []  # not overdue yet
    now[0] += 2
    assert sorted(reconciler.run_once()) == keys[1:]
    assert reconciler.run_once() == []  # just re-sent: not overdue again yet

    sink = keyed_results()

    def finish(message: EchoMessage, context: Context) -> EchoResult:
        ledger.complete(context.key)
        sink.put(context.key, {"text": message.text})
        return echo(message, context)

    with running(Worker(transport, Service("echo", EchoMessage, finish), queues=["echo.1"])):
        wait_for(lambda: len(sink) == 2)
    assert sink.stored_keys() == set(keys[1:])
    assert ledger.pending() == set()
    now[0] += 3600
    assert reconciler.run_once() == []


def test_a_worker_reports_a_heartbeat_with_what_it_handled(transport: Transport) -> None:
    from cryolive.messaging import Beat

    beats: list[Beat] = []
    lock = threading.Lock()

    def heartbeat(beat: Beat) -> None:
        with lock:
            beats.append(beat)
        if len(beats) == 2:
            raise OSError("database away")  # logged; the worker goes on beating

    last = Worker(
        transport,
        Service("echo", EchoMessage, echo),
        queues=["echo.1"],
        concurrency=2,
        heartbeat=heartbeat,
        heartbeat_s=0.05,
    )
    with running(last):
        wait_for(lambda: len(beats) >= 1)
        assert beats[0].handled == 0 and beats[0].queues == ("echo.1",)
        for i in range(3):
            start_recipe(transport, RECIPE, {"text": f"m{i}"})
        wait_for(lambda: last.handled == 3)
        wait_for(lambda: beats[-1].handled == 3 and len(beats) >= 4)
    first = beats[0]
    assert (first.service, first.consumers) == ("echo", 2) and first.pid > 0
    assert all(b.started_at == first.started_at for b in beats)
    assert beats[-1].at > first.at
    count = len(beats)
    time.sleep(0.2)
    assert len(beats) == count  # a stopped worker beats no more


def test_handler_cpu_seconds_count_the_handlers_thread_only(transport: Transport) -> None:
    """A stage's CPU-seconds: a busy handler's CPU is counted; a sleeping handler's wait is
    not, even while another thread of the same process burns CPU (stages share a process in
    the embedded deployment, so process CPU would blame one stage for another's work)."""
    stop = threading.Event()

    def burn(seconds: float) -> None:
        start = time.thread_time()
        while time.thread_time() - start < seconds and not stop.is_set():
            sum(range(1000))

    def busy(message: EchoMessage, context: Context) -> EchoResult:
        burn(0.3)
        return echo(message, context)

    def idle(message: EchoMessage, context: Context) -> EchoResult:
        time.sleep(0.3)
        return echo(message, context)

    hot = Worker(transport, Service("echo", EchoMessage, busy), queues=["echo.1"])
    cold = Worker(transport, Service("echo", EchoMessage, idle), queues=["echo.2"])
    neighbour = threading.Thread(target=burn, args=(30.0,), daemon=True)
    neighbour.start()
    try:
        with running(hot, cold):
            start_recipe(transport, RECIPE, {"text": "x"})
            wait_for(lambda: hot.handled == 1 and cold.handled == 1)
    finally:
        stop.set()
        neighbour.join()

    def sample(worker: Worker, name: str) -> float:
        value = worker.metrics_registry.get_sample_value(name, {"service": "echo"})
        assert value is not None, name
        return value

    assert sample(hot, "cryolive_handler_cpu_seconds_total") >= 0.3
    assert sample(cold, "cryolive_handler_cpu_seconds_total") < 0.1
    assert sample(cold, "cryolive_handler_seconds_sum") >= 0.3
