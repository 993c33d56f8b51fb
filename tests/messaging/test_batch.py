"""Batches: a worker with prefetch > 1 hands a service's batch handler the messages already
waiting, settles each after it, and falls back to one message at a time when the batch fails
(both backends, as the rest of the messaging suite)."""

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from cryolive.messaging import Context, Service, Transport, Worker, load_recipe
from cryolive.messaging.dispatch import envelope_for
from cryolive.messaging.dlq import list_dead
from cryolive.messaging.echo import EchoMessage, EchoResult
from cryolive.messaging.recipe import recipe_path
from cryolive.messaging.transport import BatchConsumer
from cryolive.messaging.zocalo import ZocaloTransport

# The last step of the echo recipe: no outputs, so what a handler does is all that happens.
RECIPE = load_recipe(recipe_path("echo-3step"))
QUEUE = "echo.3"


class Crash(BaseException):
    """The worker process dying mid-batch (not an error a handler reports)."""


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def publish(transport: Transport, texts: Sequence[str]) -> None:
    for text in texts:
        envelope = envelope_for(RECIPE, "3", {"text": text, "hops": 2})
        transport.publish(QUEUE, envelope.to_bytes())


class Recorder:
    """Handlers that record what they saw: ``batches`` (texts per batch call) and ``singles``
    (texts handled one at a time). The batch handler raises ``fail_batch`` when one of its
    messages is poison; the single handler raises RuntimeError on poison."""

    def __init__(self, *, poison: str = "", fail_batch: BaseException | None = None) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.poison = poison
        self.fail_batch = fail_batch

    def single(self, message: EchoMessage, context: Context) -> EchoResult:
        if message.text == self.poison:
            raise RuntimeError(f"cannot write {message.text}")
        with self.lock:
            self.singles.append(message.text)
        return EchoResult(text=message.text, hops=message.hops + 1)

    def batch(self, items: Sequence[tuple[EchoMessage, Context]]) -> list[EchoResult]:
        texts = [m.text for m, _ in items]
        with self.lock:
            self.batches.append(texts)
        if self.fail_batch is not None and (self.poison in texts or not self.poison):
            raise self.fail_batch
        return [EchoResult(text=m.text, hops=m.hops + 1) for m, _ in items]

    def service(self) -> Service[Any]:
        return Service("echo", EchoMessage, self.single, max_attempts=1, batch_handler=self.batch)

    def handled(self) -> int:
        with self.lock:
            return sum(map(len, self.batches)) + len(self.singles)


def test_both_transports_consume_in_batches(transport: Transport) -> None:
    assert isinstance(transport, BatchConsumer)
    worker = Worker(transport, Recorder().service(), queues=[QUEUE], prefetch=10)
    assert worker.batching
    assert not Worker(transport, Recorder().service(), queues=[QUEUE], prefetch=1).batching
    # the Zocalo wrapper tracks the message in hand: its workers take one at a time
    zocalo = ZocaloTransport(transport, known={"echo"})
    assert not Worker(zocalo, Recorder().service(), queues=[QUEUE], prefetch=10).batching


def test_waiting_messages_are_handled_in_one_batch_and_acknowledged(
    transport: Transport,
) -> None:
    texts = [f"m{i}" for i in range(6)]
    publish(transport, texts)
    recorder = Recorder()
    with running(Worker(transport, recorder.service(), queues=[QUEUE], prefetch=10)) as worker:
        wait_for(lambda: worker.handled == 6)
    assert recorder.batches == [texts]  # all six in one call, in order
    assert recorder.singles == []
    assert transport.depth(QUEUE) == 0 and list_dead(transport, QUEUE) == []
    # acknowledged: a new worker finds nothing to redo
    again = Recorder()
    with running(Worker(transport, again.service(), queues=[QUEUE], prefetch=10)):
        time.sleep(0.5)
    assert again.handled() == 0


def test_a_batch_never_waits_to_fill(transport: Transport) -> None:
    recorder = Recorder()
    with running(Worker(transport, recorder.service(), queues=[QUEUE], prefetch=50)) as worker:
        publish(transport, ["alone"])
        start = time.monotonic()
        wait_for(lambda: worker.handled == 1)
        took = time.monotonic() - start
    assert recorder.singles == ["alone"] and recorder.batches == []  # one message: one call
    assert took < 2.0, took


def test_a_poison_message_in_a_batch_is_dead_lettered_alone(transport: Transport) -> None:
    texts = ["a", "b", "poison", "c", "d"]
    publish(transport, texts)
    recorder = Recorder(poison="poison", fail_batch=RuntimeError("one bad record sinks all"))
    with running(Worker(transport, recorder.service(), queues=[QUEUE], prefetch=10)) as worker:
        wait_for(lambda: worker.handled == 5)
    assert recorder.batches == [texts]  # tried together once, then one at a time
    assert recorder.singles == ["a", "b", "c", "d"]
    (dead,) = list_dead(transport, QUEUE)
    assert "cannot write poison" in dead.reason
    assert transport.depth(QUEUE) == 0


def test_a_crash_before_the_batch_is_done_redelivers_every_message(
    transport: Transport,
) -> None:
    assert isinstance(transport, BatchConsumer)
    texts = [f"m{i}" for i in range(4)]
    publish(transport, texts)
    crashing = Recorder(fail_batch=Crash())
    worker = Worker(transport, crashing.service(), queues=[QUEUE], prefetch=10)
    stop, crashed = threading.Event(), threading.Event()

    def consume() -> None:  # the worker's consumer thread, watched for its death
        try:
            transport.consume_batch(
                QUEUE, lambda d: worker.handle_batch(QUEUE, d), prefetch=10, stop=stop
            )
        except Crash:
            crashed.set()

    thread = threading.Thread(target=consume)
    thread.start()
    assert crashed.wait(15.0)
    thread.join(5.0)
    assert crashing.batches == [texts] and crashing.singles == []

    healthy = Recorder()
    with running(Worker(transport, healthy.service(), queues=[QUEUE], prefetch=10)) as second:
        wait_for(lambda: second.handled == 4)
    assert sorted(m for b in healthy.batches for m in b) + healthy.singles == texts
    assert list_dead(transport, QUEUE) == []


@pytest.mark.parametrize("results", [None, 2])
def test_a_batch_handler_with_a_wrong_count_of_results_falls_back(
    transport: Transport, results: int | None
) -> None:
    singles: list[str] = []

    def single(message: EchoMessage, context: Context) -> None:
        singles.append(message.text)

    def batch(items: Sequence[tuple[EchoMessage, Context]]) -> list[None] | None:
        return None if results is None else [None] * results

    publish(transport, ["x", "y", "z"])
    service = Service("echo", EchoMessage, single, batch_handler=batch)
    with running(Worker(transport, service, queues=[QUEUE], prefetch=10)) as worker:
        wait_for(lambda: worker.handled == 3)
    # None: all done by the batch; a wrong count is a bug: each is redone on its own
    assert singles == ([] if results is None else ["x", "y", "z"])
