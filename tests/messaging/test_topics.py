"""Topic-only steps (Zocalo's ``topic`` outputs): a message for such a step is broadcast, and
every service subscribed to the topic gets a copy, on the embedded broker and on RabbitMQ; in
cryolive's own recipes and in Zocalo's (python-workflows' recipe wrapper)."""

from __future__ import annotations

import threading

from pydantic import BaseModel

from cryolive.messaging import Service, Transport, Worker
from cryolive.messaging.dispatch import start_recipe, subscription_queue
from cryolive.messaging.echo import EchoMessage, echo
from cryolive.messaging.recipe import Recipe, recipe_from_zocalo
from cryolive.messaging.service import Context
from cryolive.messaging.zocalo import HEADER, ZocaloTransport, parse_zocalo, start_zocalo
from tests.messaging.test_zocalo import running, take, wait_for


class Seen(BaseModel):
    text: str
    hops: int


def _collector(name: str, got: list[tuple[str, Seen]], lock: threading.Lock) -> Service[Seen]:
    def handle(message: Seen, context: Context) -> None:
        with lock:
            got.append((name, message))

    return Service(name, Seen, handle)


def test_a_topic_only_step_reaches_every_subscribed_service(transport: Transport) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "topics",
            "start": ["1"],
            "steps": {
                "1": {
                    "service": "echo",
                    "queue": "t.echo",
                    "parameters": {"text": "{text}"},
                    "outputs": {"default": ["2", "3"]},
                },
                "2": {
                    "service": "left",
                    "topic": "t.results",
                    "parameters": {"text": "{text}", "hops": "{hops}"},
                },
                "3": {
                    "service": "right",
                    "topic": "t.results",
                    "parameters": {"text": "{text}", "hops": "{hops}"},
                },
            },
        }
    )
    got: list[tuple[str, Seen]] = []
    lock = threading.Lock()
    transport.subscribe("t.results", "spy")  # any queue may listen in
    workers = [
        Worker(transport, Service("echo", EchoMessage, echo), queues=["t.echo"]),
        Worker(transport, _collector("left", got, lock), topics=["t.results"]),
        Worker(transport, _collector("right", got, lock), topics=["t.results"]),
    ]
    assert workers[1].queues == (subscription_queue("t.results", "left"),)
    with running(workers[0]), running(workers[1]), running(workers[2]):
        start_recipe(transport, recipe, {"text": "hi"})
        wait_for(lambda: len(got) == 2)
        spied = take(transport, "spy", 2)  # both broadcasts, one a copy for each step
    assert sorted(name for name, _ in got) == ["left", "right"]
    assert all(seen == Seen(text="hi", hops=1) for _, seen in got)
    assert len(spied) == 2
    # each service took the broadcast meant for its own step and dead-lettered none
    for worker in workers[1:]:
        assert transport.dead_letters(worker.queues[0]) == []


def test_a_broadcast_without_subscribers_is_dropped(transport: Transport) -> None:
    transport.broadcast("t.nobody", b"{}")
    transport.subscribe("t.late", "late")
    transport.broadcast("t.late", b"x")
    assert [d.body for d in take(transport, "late")] == [b"x"]
    assert transport.depth("t.nobody") == 0


def test_a_zocalo_topic_step_is_broadcast_in_the_recipe_wrapper(transport: Transport) -> None:
    zocalo = {
        "1": {
            "service": "Echo",
            "queue": "tz.echo",
            "parameters": {"text": "{text}"},
            "output": 2,
        },
        "2": {"service": "Images", "topic": "tz.images"},
        "start": [[1, []]],
    }
    recipe = recipe_from_zocalo(zocalo, name="tz")
    transport.subscribe("tz.images", "images-a")  # two workflows-side subscribers
    transport.subscribe("tz.images", "images-b")
    wrapped = ZocaloTransport(transport, known={"echo"}, table={"Echo": "echo"})
    with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=["tz.echo"])):
        start_zocalo(transport, recipe, {"text": "hello"})
        copies = [take(transport, q)[0] for q in ("images-a", "images-b")]
    for delivery in copies:
        assert str(delivery.headers[HEADER]) in {"True", "true", "1"}
        message = parse_zocalo(delivery.body)
        assert message.pointer == 2 and message.path == [1]
        assert message.payload == {"text": "hello", "hops": 1}
        assert message.recipe["2"] == {"service": "Images", "topic": "tz.images"}


def test_a_zocalo_recipe_can_start_on_a_topic(transport: Transport) -> None:
    zocalo = {"1": {"service": "Echo", "topic": "tz.start", "parameters": {"text": "{text}"}},
              "start": [[1, {"n": 1}]]}  # fmt: skip
    transport.subscribe("tz.start", "starts")
    start_zocalo(transport, recipe_from_zocalo(zocalo, name="ts"), {"text": "x"})
    (delivery,) = take(transport, "starts")
    message = parse_zocalo(delivery.body)
    assert message.pointer == 1 and message.payload == {"n": 1}
