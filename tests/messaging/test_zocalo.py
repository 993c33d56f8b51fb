"""Zocalo interoperability: real cryoem-services recipes, the service map, placeholders, and
python-workflows' recipe messages on both brokers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.errors import BadInputError
from cryolive.messaging import Service, Transport, Worker
from cryolive.messaging.dlq import list_dead
from cryolive.messaging.echo import EchoMessage, echo
from cryolive.messaging.recipe import (
    MissingParameters,
    RecipeError,
    fill_recipe,
    load_recipe,
    recipe_from_zocalo,
    recipe_path,
)
from cryolive.messaging.transport import Delivery
from cryolive.messaging.zocalo import (
    HEADER,
    ZocaloTransport,
    cryolive_service,
    parse_zocalo,
    service_map,
    start_zocalo,
)

ZOCALO_RECIPES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "zocalo-recipes"
REAL = sorted(ZOCALO_RECIPES.glob("*.json")) if ZOCALO_RECIPES.is_dir() else []


@pytest.fixture
def zocalo_recipes(need_service: Callable[[str, str], None]) -> Path:
    if not REAL:
        need_service("shared Zocalo recipes", f"not at {ZOCALO_RECIPES}")
    return ZOCALO_RECIPES


def show(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(build_app(), ["recipe", "show", *args], env=env)


# -- recipe show on the real recipes ---------------------------------------------------------


def test_recipe_show_prints_every_step_of_every_real_recipe(zocalo_recipes: Path) -> None:
    assert len(REAL) >= 6
    for path in REAL:
        data = json.loads(path.read_text())
        result = show(str(path))
        assert result.exit_code == 0, (path.name, result.output)
        steps = [k for k in data if k.isdigit()]
        for sid in steps:
            assert data[sid]["service"] in result.output, (path.name, sid)
        assert "unfilled (give --param NAME=VALUE)" in result.output
        if any(data[s]["queue"] == "{feedback_queue}" for s in steps):
            assert "<unfilled:feedback_queue>" in result.output


def test_recipe_show_fills_start_parameters_and_names_runners(zocalo_recipes: Path) -> None:
    path = zocalo_recipes / "em-spa-preprocess.json"
    result = show(str(path), "--param", "feedback_queue=murfey_feedback_m12", "--param", "kv=300")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "murfey_feedback_m12" in out and "<unfilled:feedback_queue>" not in out
    assert '"voltage": 300' in out  # a whole placeholder keeps the value's type
    assert "<run time:$ispyb_movie_id>" in out
    assert "filled at run time from the environment: ispyb_movie_id" in out
    rows = {line.split("│")[2].strip(): line.split("│")[4].strip() for line in _rows(out)}
    assert rows["MotionCorr"] == "motioncorr"
    assert rows["CTFFind"] == "ctf"
    assert rows["NodeCreator"] == "external"


def _rows(output: str) -> list[str]:
    """Table lines that start a step (the step number in the first column)."""
    return [
        line for line in output.splitlines() if line.startswith("│") and line.split("│")[1].strip()
    ]


def test_recipe_show_strict_names_every_missing_parameter(zocalo_recipes: Path) -> None:
    path = zocalo_recipes / "em-spa-class3d-wrapper.json"
    result = show(str(path), "--strict", "--param", "dcid=7")
    assert result.exit_code == 2
    assert "feedback_queue" in result.output and "class3d_dir" in result.output
    assert "dcid," not in result.output  # given


def test_recipe_show_strict_passes_once_every_parameter_is_given(zocalo_recipes: Path) -> None:
    recipe = load_recipe(zocalo_recipes / "em-spa-extract.json")
    with pytest.raises(MissingParameters) as missing:
        fill_recipe(recipe, {})
    params = [f"{name}=v-{name}" for name in missing.value.names]
    result = show(str(zocalo_recipes / "em-spa-extract.json"), "--strict", *_flags(params))
    assert result.exit_code == 0, result.output
    assert "<unfilled:" not in result.output


def _flags(params: list[str]) -> list[str]:
    return [arg for p in params for arg in ("--param", p)]


def test_recipe_show_takes_cryolive_recipes_too() -> None:
    result = show("echo-3step", "--registry", "cryolive.messaging.registry:default_registry")
    assert result.exit_code == 0, result.output
    assert "cryolive format" in result.output
    assert {line.split("│")[4].strip() for line in _rows(result.output)} == {"echo"}


def test_recipe_show_service_map_is_extended_by_settings(zocalo_recipes: Path) -> None:
    path = str(zocalo_recipes / "em-spa-preprocess.json")
    env = {"CRYOLIVE_MESSAGING__SERVICE_MAP": json.dumps({"NodeCreator": "echo", "CTFFind": ""})}
    result = show(path, env=env)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[2].strip(): line.split("│")[4].strip() for line in _rows(result.output)}
    assert rows["NodeCreator"] == "echo"
    assert rows["CTFFind"] == "external"  # a facility can hand a service to its own workers
    assert rows["MotionCorr"] == "motioncorr"


def test_recipe_show_bad_param_and_bad_file_are_clear(tmp_path: Path) -> None:
    assert "expected KEY=VALUE" in show("echo-3step", "--param", "novalue").output
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"1": {"service": "X", "queue": "q", "output": 9}, "start": [[1, []]]})
    )
    result = show(str(bad))
    assert result.exit_code == 2 and "'9' is not defined" in result.output


# -- the recipe model -------------------------------------------------------------------------


def test_zocalo_fields_are_kept_not_dropped() -> None:
    recipe = recipe_from_zocalo(
        {
            "1": {
                "service": "Class2DWrapper",
                "queue": "cluster.submission",
                "job_parameters": {"nr_iter": "{nr_iter}", "threads": 8},
                "output": {"select": 2},
                "error": 3,
            },
            "2": {"service": "SelectClasses", "topic": "transient.select"},
            "3": {"service": "Murfey", "queue": "{feedback_queue}"},
            "start": [[1, {"particles": "a.star"}]],
            "error": [3],
        },
        name="r",
    )
    assert recipe.steps["1"].job_parameters == {"nr_iter": "{nr_iter}", "threads": 8}
    assert recipe.steps["1"].error == ["3"]
    assert recipe.steps["2"].topic == "transient.select"
    assert recipe.start_payloads == {"1": {"particles": "a.star"}}
    assert recipe.error == ["3"]
    filled = fill_recipe(recipe, {"nr_iter": 25, "feedback_queue": "murfey"})
    assert filled.steps["1"].job_parameters["nr_iter"] == 25
    assert filled.steps["3"].queue == "murfey"


def test_zocalo_recipe_errors_are_clear() -> None:
    with pytest.raises(RecipeError, match="error: step '7' is not defined"):
        recipe_from_zocalo(
            {"1": {"service": "A", "queue": "a"}, "start": [[1, []]], "error": 7}, name="r"
        )
    with pytest.raises(RecipeError, match="needs a queue or a topic"):
        recipe_from_zocalo({"1": {"service": "A"}, "start": [[1, []]]}, name="r")
    with pytest.raises(RecipeError, match="unknown keys"):
        recipe_from_zocalo(
            {"1": {"service": "A", "queue": "a", "qeueu": 1}, "start": [[1, []]]}, name="r"
        )


def test_missing_parameters_are_bad_input_naming_each() -> None:
    recipe = recipe_from_zocalo(
        {
            "1": {"service": "A", "queue": "{q}", "parameters": {"x": "{x}", "y": "n{y}"}},
            "start": [[1, []]],
        },
        name="r",
    )
    with pytest.raises(BadInputError, match="missing start parameters q, x, y"):
        fill_recipe(recipe, {})
    partly = fill_recipe(recipe, {"x": 1}, strict=False)
    assert partly.steps["1"].parameters == {"x": 1, "y": "n{y}"}


def test_references_fill_from_start_parameters_when_given() -> None:
    recipe = recipe_from_zocalo(
        {
            "1": {"service": "A", "queue": "a", "parameters": {"m": "$ispyb_movie_id"}},
            "start": [[1, []]],
        },
        name="r",
    )
    assert fill_recipe(recipe, {"ispyb_movie_id": 42}).steps["1"].parameters["m"] == 42
    assert fill_recipe(recipe, {}).steps["1"].parameters["m"] == "$ispyb_movie_id"


def test_dotted_placeholders_still_fill_native_recipes() -> None:
    recipe = load_recipe(recipe_path("spa-preprocess"))
    values = {"acquisition": {"voltage_kv": 300, "pixel_size_a": 1.0}}
    filled = fill_recipe(recipe, values, strict=False)
    assert filled.steps["motioncorr"].parameters["voltage_kv"] == 300


def test_service_map_table() -> None:
    table = service_map({"Extract": "pick", "EMISPyB": ""})
    known = {"motioncorr", "pick", "writer"}
    assert cryolive_service("MotionCorr", table, known) == "motioncorr"
    assert cryolive_service("Extract", table, known) == "pick"
    assert cryolive_service("EMISPyB", table, known) is None
    assert cryolive_service("writer", table, known) == "writer"
    assert cryolive_service("Images", table, known) is None


# -- python-workflows messages ----------------------------------------------------------------

ZOCALO_ECHO = {
    "1": {"service": "Echo", "queue": "zq.echo", "parameters": {"text": "{text}"}, "output": 2},
    "2": {"service": "Images", "queue": "zq.images", "parameters": {"size": 3}},
    "start": [[1, []]],
}


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@contextmanager
def running(worker: Worker) -> Iterator[None]:
    worker.start()
    try:
        yield
    finally:
        worker.stop()


def take(
    transport: Transport, queue: str, count: int = 1, *, timeout_s: float = 15.0
) -> list[Delivery]:
    """The next ``count`` messages of ``queue``, acknowledged."""
    got: list[Delivery] = []
    stop = threading.Event()

    def on_message(delivery: Delivery) -> None:
        got.append(delivery)
        delivery.ack()
        if len(got) >= count:
            stop.set()

    thread = threading.Thread(
        target=transport.consume, args=(queue, on_message), kwargs={"prefetch": 1, "stop": stop}
    )
    thread.start()
    thread.join(timeout_s)
    stop.set()
    thread.join(5)
    assert len(got) == count, f"{len(got)} of {count} messages from {queue}"
    return got


def test_cryolive_service_takes_a_zocalo_step_and_sends_on_as_the_recipe_says(
    transport: Transport,
) -> None:
    recipe = recipe_from_zocalo(ZOCALO_ECHO, name="zocalo-echo")
    wrapped = ZocaloTransport(transport, known={"echo"}, table={"Echo": "echo"})
    with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=["zq.echo"])):
        start_zocalo(transport, recipe, {"text": "hello"}, environment={"ID": "abc"})
        (onward,) = take(transport, "zq.images")
    assert str(onward.headers[HEADER]) in {"True", "true", "1"}
    message = parse_zocalo(onward.body)
    assert message.pointer == 2 and message.path == [1]
    assert message.payload == {"text": "hello", "hops": 1}
    assert message.environment == {"ID": "abc"}
    assert message.recipe["2"] == ZOCALO_ECHO["2"]  # Diamond's service names stay
    assert message.recipe["1"]["service"] == "Echo"
    assert message.recipe["1"]["parameters"] == {"text": "hello"}


def test_a_workflows_side_takes_a_cryolive_step(transport: Transport) -> None:
    """cryolive's own recipe, started in the recipe wrapper's form: step 1 is served by the
    other side (played here from the documented format), step 2 by a cryolive worker."""
    recipe = load_recipe(recipe_path("echo-3step"))
    (first,) = start_zocalo(transport, recipe, {"text": "hi"})
    first_queue = recipe.steps[recipe.start[0]].queue
    (delivery,) = take(transport, first_queue)
    incoming = parse_zocalo(delivery.body)
    assert incoming.pointer == first.pointer and incoming.recipe["start"][0][0] == first.pointer
    step = incoming.recipe[str(incoming.pointer)]
    assert step["parameters"] == {"text": "hi", "hops": 0}
    (target,) = step["output"]  # an unnamed output, as a workflows service's send() expects
    # what a workflows service does on rw.send({...}): the next step, the path extended
    onward = incoming.to(target, {"text": "hi", "hops": 1})
    next_queue = incoming.recipe[str(target)]["queue"]
    transport.publish(next_queue, onward.body(), headers={HEADER: "True"})
    wrapped = ZocaloTransport(transport, known={"echo"})
    with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=[next_queue])):
        (last,) = take(
            transport,
            incoming.recipe[str(incoming.recipe[str(target)]["output"][0])]["queue"],
        )
    result = parse_zocalo(last.body)
    assert result.path == [incoming.pointer, target]
    assert result.payload == {"text": "hi", "hops": 2}


def test_environment_references_reach_the_cryolive_service(transport: Transport) -> None:
    zocalo = {
        "1": {
            "service": "Echo",
            "queue": "zq.echo",
            "parameters": {"text": "$ispyb_movie_id"},
            "output": 2,
        },
        "2": {"service": "Images", "queue": "zq.images"},
        "start": [[1, []]],
    }
    message = {"recipe": zocalo, "recipe-pointer": 1, "recipe-path": [],
               "environment": {"ispyb_movie_id": "m-17"}, "payload": []}  # fmt: skip
    wrapped = ZocaloTransport(transport, known={"echo"}, table={"Echo": "echo"})
    with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=["zq.echo"])):
        transport.publish("zq.echo", json.dumps(message).encode(), headers={HEADER: "True"})
        (onward,) = take(transport, "zq.images")
    assert parse_zocalo(onward.body).payload == {"text": "m-17", "hops": 1}


def test_a_broken_zocalo_message_is_dead_lettered_as_it_came(transport: Transport) -> None:
    wrapped = ZocaloTransport(transport, known={"echo"}, table={"Echo": "echo"})
    body = json.dumps({"recipe": ZOCALO_ECHO, "recipe-pointer": 9, "payload": {}}).encode()
    with running(Worker(wrapped, Service("echo", EchoMessage, echo), queues=["zq.echo"])):
        transport.publish("zq.echo", body, headers={HEADER: "True"})
        wait_for(lambda: len(list_dead(transport, "zq.echo")) == 1)
    (dead,) = transport.dead_letters("zq.echo")
    assert dead.body == body
    assert "recipe-pointer" in dead.reason


def test_dead_letters_named_as_zocalo_names_them(rabbitmq_url: str, queue_prefix: str) -> None:
    """With ``?dead_letters=zocalo`` a queue's dead letters live in ``dlq.<queue>``, where
    Zocalo's tools look, and cryolive's own tools (dlq list/purge, broker dead-lettering) find
    them there too."""
    from cryolive.messaging import open_transport
    from cryolive.messaging.dlq import purge_dead

    rabbit = open_transport(f"{rabbitmq_url}?dead_letters=zocalo", prefix=queue_prefix)
    plain = open_transport(rabbitmq_url)  # no prefix: sees the broker's names
    try:
        rabbit.publish("zq.echo", b"{}")
        rabbit.dead_letter("zq.echo", b"broken", reason="unreadable")
        assert plain.depth(f"dlq.{queue_prefix}zq.echo") == 1
        assert plain.depth(f"{queue_prefix}zq.echo.dlq") == 0
        assert [d.body for d in rabbit.dead_letters("zq.echo")] == [b"broken"]
        assert rabbit.depth("zq.echo.dlq") == 1
        assert purge_dead(rabbit, "zq.echo") == 1
    finally:
        rabbit.delete_declared()
        rabbit.close()
        plain.close()
    with pytest.raises(ValueError, match="dead_letters must be"):
        open_transport(f"{rabbitmq_url}?dead_letters=dlq")


def test_cryolive_worker_zocalo_flag_takes_zocalo_steps(
    rabbitmq_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    """`cryolive worker --zocalo`, its service map from the settings (a separate process)."""
    import os
    import subprocess
    import sys

    import cryolive
    from cryolive.messaging import open_transport

    src = Path(cryolive.__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "CRYOLIVE_DATA_ROOT": str(tmp_path),
        "CRYOLIVE_BROKER_URL": rabbitmq_url,
        "CRYOLIVE_BROKER_PREFIX": queue_prefix,
        "CRYOLIVE_MESSAGING__SERVICE_MAP": json.dumps({"Echo": "echo"}),
    }
    command = [
        sys.executable, "-c", "from cryolive.cli import main; main()", "worker", "--zocalo",
        "--registry", "cryolive.messaging.registry:default_registry", "--service", "echo",
        "--queue", "zq.echo", "--no-drop-stopped",
    ]  # fmt: skip
    rabbit = open_transport(rabbitmq_url, prefix=queue_prefix)
    worker = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        recipe = recipe_from_zocalo(ZOCALO_ECHO, name="zocalo-echo")
        start_zocalo(rabbit, recipe, {"text": "via the command line"})
        (onward,) = take(rabbit, "zq.images", timeout_s=60)  # the worker starts in seconds
    finally:
        worker.terminate()
        worker.wait(20)
        rabbit.delete_declared()
        rabbit.close()
    message = parse_zocalo(onward.body)
    assert (message.pointer, message.payload) == (2, {"text": "via the command line", "hops": 1})
