"""A round trip on RabbitMQ with the real python-workflows package (the ``zocalo`` extra of the
test environment; skipped where it is not installed): a workflows service takes a step of a
cryolive recipe, and a cryolive service takes a step of a Zocalo recipe started by workflows."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

# The test environment has it (Makefile: the zocalo-test extra): missing is an error, never a skip
import pika
import pytest
import workflows.recipe as workflows_recipe
import workflows.transport.pika_transport as pika_transport

from cryolive.messaging import Service, Worker
from cryolive.messaging.echo import EchoMessage, echo
from cryolive.messaging.rabbitmq import RabbitTransport
from cryolive.messaging.recipe import Recipe
from cryolive.messaging.zocalo import ZocaloTransport, parse_zocalo, start_zocalo
from tests.messaging.test_zocalo import running, take


@pytest.fixture
def rabbit(rabbitmq_url: str) -> Iterator[RabbitTransport]:
    transport = RabbitTransport(rabbitmq_url, delivery_limit=3)
    yield transport
    transport.delete_declared()
    transport.close()


@pytest.fixture
def workflows_side(rabbitmq_url: str) -> Iterator[Any]:
    """A python-workflows transport on the same broker (guest/guest on 127.0.0.1:5672)."""
    transport = pika_transport.PikaTransport()
    transport.config.update(
        {"--rabbit-host": "127.0.0.1", "--rabbit-port": 5672, "--rabbit-vhost": "/"}
    )
    assert transport.connect()
    yield transport
    transport.disconnect()


def _names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"wf-{tag}.a", f"wf-{tag}.b", f"wf-{tag}.c"


def _classic_queue(name: str) -> None:
    """A queue declared the way a Zocalo facility's own tools declare theirs."""
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    connection.channel().queue_declare(name, durable=True)
    connection.close()


def _delete(*names: str) -> None:
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    for name in names:
        connection.channel().queue_delete(name)
    connection.close()


def test_a_workflows_service_takes_a_cryolive_step(
    rabbit: RabbitTransport, workflows_side: Any
) -> None:
    first, second, third = _names()
    recipe = Recipe.model_validate(
        {
            "name": "shout-then-echo",
            "start": ["shout"],
            "steps": {
                "shout": {
                    "service": "Shout",
                    "queue": first,
                    "parameters": {"text": "{text}"},
                    "outputs": {"default": ["echo"]},
                },
                "echo": {
                    "service": "echo",
                    "queue": second,
                    # filled from the upstream payload: "{text}" would be filled at the start
                    "parameters": {"text": "{shouted}", "hops": "{hops}"},
                    "outputs": {"default": ["sink"]},
                },
                "sink": {"service": "sink", "queue": third},
            },
        }
    )
    seen: list[Any] = []
    inbox: queue.Queue[tuple[Any, Any]] = queue.Queue()

    def shout() -> None:  # a workflows service
        rw, header = inbox.get(timeout=20)
        seen.append((rw.recipe_pointer, rw.recipe_step["parameters"]))
        rw.send({"shouted": rw.recipe_step["parameters"]["text"].upper(), "hops": 1})
        workflows_side.ack(header)

    # As in a workflows service, the message is handled off the transport's own thread (a
    # send from the transport's callback would wait on that very thread).
    service = threading.Thread(target=shout)
    service.start()

    wrapped = ZocaloTransport(rabbit, known={"echo"})
    try:
        with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=[second])):
            start_zocalo(rabbit, recipe, {"text": "hello"})  # declares the first queue
            workflows_recipe.wrap_subscribe(
                workflows_side, first, lambda rw, h, m: inbox.put((rw, h)), acknowledgement=True
            )
            (last,) = take(rabbit, third)
    finally:
        _delete(first, second, third)
        service.join(20)
    assert seen == [(1, {"text": "hello"})]
    result = parse_zocalo(last.body)
    assert result.payload == {"text": "HELLO", "hops": 2}
    assert result.path == [1, 2] and result.pointer == 3


def test_a_cryolive_service_takes_a_step_of_a_recipe_workflows_started(
    rabbit: RabbitTransport, workflows_side: Any
) -> None:
    first, second, _ = _names()
    _classic_queue(first)  # the facility's queues, declared by its own tools: used as they are
    _classic_queue(second)
    zocalo_recipe = {
        "1": {"service": "Echo", "queue": first, "parameters": {"text": "{text}"}, "output": 2},
        "2": {"service": "Images", "queue": second, "parameters": {"size": 64}},
        "start": [[1, []]],
    }
    got: list[Any] = []
    done = threading.Event()

    def images(rw: Any, header: Any, message: Any) -> None:  # a workflows service
        got.append((rw.recipe_pointer, rw.recipe_path, rw.environment, message))
        done.set()

    workflows_recipe.wrap_subscribe(workflows_side, second, images)  # acknowledged on receipt
    wrapped = ZocaloTransport(rabbit, known={"echo"}, table={"Echo": "echo"})
    try:
        with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=[first])):
            recipe = workflows_recipe.Recipe(zocalo_recipe)
            recipe.apply_parameters({"text": "from workflows"})
            recipe.validate()
            wrapper = workflows_recipe.RecipeWrapper(
                recipe=recipe, transport=workflows_side, environment={"ID": "run-1"}
            )
            wrapper.start()
            assert done.wait(20), "the workflows service got nothing"
    finally:
        _delete(first, second)
    ((pointer, path, environment, payload),) = got
    assert (pointer, path) == (2, [1])
    assert environment == {"ID": "run-1"}
    assert payload == {"text": "from workflows", "hops": 1}
