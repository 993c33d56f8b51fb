"""The staff area: queues and consumers, dead letters (reinject, discard), failures per data
collection and throughput; on the embedded broker (the shared app), RabbitMQ, and none."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cryolive.messaging import open_transport
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.messaging.transport import Delivery, Transport
from cryolive.web import create_app

# the recipe's step order
QUEUES = ("motioncorr", "ctf", "pick", "ice", "class2d", "class3d", "refine3d", "writer")


def _queue(table: dict[str, Any], name: str) -> dict[str, Any]:
    (row,) = [q for q in table["queues"] if q["queue"] == name]
    return row


def _staff(app: Any) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post(
        "/login", data={"login": "carol", "password": "password-carol", "csrf_token": token}
    )
    return client, str(client.get("/api/me").json()["csrf_token"])


def _check_broker(client: TestClient, csrf: str, transport: Transport, kind: str) -> None:
    """Queue depths, consumers and dead letters as the broker holds them, and acting on one."""
    before = client.get("/api/staff/queues").json()
    assert before["broker"] == kind
    assert [q["queue"] for q in before["queues"]] == list(QUEUES)
    for i in range(3):
        transport.publish("ctf", f"work {i}".encode())
    keys = [f"movie-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    ids = [_dead(transport, key) for key in keys]

    stop, seen = threading.Event(), threading.Event()

    def take(delivery: Delivery) -> None:
        seen.set()
        stop.wait(10)
        delivery.requeue()

    consumer = threading.Thread(
        target=transport.consume, args=("ice", take), kwargs={"prefetch": 1, "stop": stop}
    )
    consumer.start()
    transport.publish("ice", b"held")
    try:
        assert seen.wait(10)
        now = client.get("/api/staff/queues", params={"newest": 2}).json()
        assert _queue(now, "ctf")["ready"] == _queue(before, "ctf")["ready"] + 3
        assert _queue(now, "ice")["consumers"] == 1 and _queue(now, "ice")["ready"] == 0
        dead = _queue(now, "motioncorr")
        assert dead["dead"] == _queue(before, "motioncorr")["dead"] + 3
        assert [d["key"] for d in dead["newest_dead"]] == keys[::-1][:2]  # newest first
        assert dead["newest_dead"][0]["reason"] == "motioncorr: movie truncated"
    finally:
        stop.set()
        consumer.join(10)

    url = "/api/staff/queues/motioncorr/dead/{}/{}"
    assert client.post(url.format(ids[0], "reinject")).status_code == 403  # no CSRF token
    headers = {"X-CSRF-Token": csrf}
    assert client.post(url.format(ids[0], "reinject"), headers=headers).json() == {"reinjected": 1}
    assert client.post(url.format(ids[1], "discard"), headers=headers).json() == {"discarded": 1}
    gone = client.post(url.format(ids[1], "discard"), headers=headers)
    assert gone.status_code == 404 and "No dead letter" in gone.json()["detail"]
    odd = client.post("/api/staff/queues/nope/dead/x/discard", headers=headers)
    assert odd.status_code == 404 and "No queue 'nope'" in odd.json()["detail"]
    assert client.post(url.format(ids[2], "explode"), headers=headers).status_code == 422
    after = client.get("/api/staff/queues").json()
    assert _queue(after, "motioncorr")["dead"] == _queue(before, "motioncorr")["dead"] + 1
    assert _queue(after, "motioncorr")["ready"] == _queue(before, "motioncorr")["ready"] + 1
    page = client.get("/staff").text
    assert keys[2] in page and keys[1] not in page and "Reinject" in page


def _dead(transport: Transport, key: str) -> str:
    from cryolive.messaging.envelope import Envelope

    body = Envelope.model_validate(
        {
            "key": key,
            "recipe": {
                "name": "spa-preprocess",
                "start": ["motioncorr"],
                "steps": {"motioncorr": {"service": "motioncorr", "queue": "motioncorr"}},
            },
            "step": "motioncorr",
        }
    )
    transport.dead_letter("motioncorr", body.to_bytes(), reason="motioncorr: movie truncated")
    return body.message_id


def test_embedded_broker(app: Any, world: Any) -> None:
    client, csrf = _staff(app)
    _check_broker(client, csrf, open_transport(world.broker_url), "embedded")


@pytest.fixture
def rabbit_app(world: Any, rabbitmq_url: str) -> Iterator[tuple[Any, Transport]]:
    prefix = f"web-{uuid.uuid4().hex[:8]}."
    # the app opens RabbitMQ's transport itself, from the settings
    settings = world.settings().model_copy(
        update={"broker_url": rabbitmq_url, "broker_prefix": prefix}
    )
    ours = open_transport(rabbitmq_url, prefix=prefix)
    for queue in QUEUES:
        ours.publish(queue, b"declare")  # declared as the pipeline declares them
        ours.purge(queue)
    yield create_app(settings), ours
    ours.delete_declared()
    ours.close()


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_rabbitmq(rabbit_app: tuple[Any, Transport]) -> None:
    app, transport = rabbit_app
    with TestClient(app) as client_ctx:
        client, csrf = _staff(client_ctx.app)
        _check_broker(client, csrf, transport, "rabbitmq")


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_the_embedded_broker_of_another_process_shows_its_dead_letters(
    world: Any, tmp_path: Path
) -> None:
    # The pipeline's process (another memory:// broker) journals its dead letters in the data
    # root; the web server's process lists them from there (it showed "No broker connected").
    settings = world.settings().model_copy(update={"data_root": tmp_path})
    pipeline = EmbeddedTransport(
        f"memory://{uuid.uuid4().hex}", journal=settings.dead_letter_journal
    )
    message_id = _dead(pipeline, "movie-journal")
    client, csrf = _staff(create_app(settings))
    table = client.get("/api/staff/queues").json()
    assert table["broker"] == "embedded" and table["message"] == ""
    dead = _queue(table, "motioncorr")
    assert dead["dead"] == 1 and dead["newest_dead"][0]["key"] == "movie-journal"
    assert dead["newest_dead"][0]["reason"] == "motioncorr: movie truncated"
    assert "movie-journal" in client.get("/staff").text
    url = f"/api/staff/queues/motioncorr/dead/{message_id}/{{}}"
    headers = {"X-CSRF-Token": csrf}
    refused = client.post(url.format("reinject"), headers=headers)
    assert refused.status_code == 503 and "pipeline's process" in refused.json()["detail"]
    assert client.post(url.format("discard"), headers=headers).json() == {"discarded": 1}
    assert pipeline.dead_letters("motioncorr") == []


def test_failures_per_collection(clients: Any, world: Any) -> None:
    rows = clients["staff"][0].get("/api/staff/collection-failures").json()
    by_dc = {r["data_collection_id"]: r for r in rows}
    raw = by_dc[world.data_collection_id]
    assert raw["count"] == 1 and raw["directory"] == f"{world.root}/bi10001-1/raw/"
    assert raw["latest"][0]["message"] == "ctf: FoilHole_11.tiff: blank"
    assert "micrograph is blank" in raw["latest"][0]["description"]
    raw2 = by_dc[world.outside_collection_id]
    assert [m["message"] for m in raw2["latest"]] == ["no gain reference found"]
    one = clients["staff"][0].get("/api/staff/collection-failures", params={"collections": 1})
    assert len(one.json()) == 1
    assert (
        clients["staff"][0].get("/api/staff/collection-failures?collections=0").status_code == 422
    )


def test_throughput(clients: Any, world: Any) -> None:
    client = clients["staff"][0]
    # the 12 movies were acquired 09:00-09:11 on 2026-11-20, all motion corrected
    data = client.get(
        "/api/staff/throughput", params={"until": "2026-11-20T10:00:00", "hours": 3}
    ).json()
    (raw,) = [c for c in data["collections"] if c["data_collection_id"] == world.data_collection_id]
    assert raw["movies"] == [0, 0, 12] and raw["microscope"] == "m02"
    assert raw["hours"] == ["2026-11-20T07:00:00", "2026-11-20T08:00:00", "2026-11-20T09:00:00"]
    later = client.get(
        "/api/staff/throughput", params={"until": "2026-11-20T09:05:00+00:00", "hours": 1}
    ).json()
    (raw,) = [
        c for c in later["collections"] if c["data_collection_id"] == world.data_collection_id
    ]
    assert raw["movies"] == [12]  # the window ends at 10:00, the hour containing 09:05
    assert client.get("/api/staff/throughput", params={"hours": 0}).status_code == 422
    assert client.get("/api/staff/throughput", params={"until": "yesterday"}).status_code == 422


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_an_unreachable_rabbitmq_is_reported(world: Any) -> None:
    settings = world.settings().model_copy(update={"broker_url": "amqp://127.0.0.1:1/"})
    client, _ = _staff(create_app(settings))
    response = client.get("/api/staff/queues")
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]
    page = client.get("/staff")
    assert page.status_code == 200 and "The broker is unreachable" in page.text
    assert "no gain reference found" in page.text  # the rest of the page is there


def test_throughput_is_named_by_visit_and_folder(clients: Any, world: Any) -> None:
    data = (
        clients["staff"][0]
        .get("/api/staff/throughput", params={"until": "2026-11-20T10:00:00", "hours": 3})
        .json()
    )
    (raw,) = [c for c in data["collections"] if c["data_collection_id"] == world.data_collection_id]
    assert raw["name"] == "raw" and raw["directory"].rstrip("/").endswith(
        "/raw"
    )  # the legend: not a path


def test_microscope_rate_now_and_last_movie(clients: Any, world: Any) -> None:
    import datetime as dt

    from sqlalchemy.orm import Session

    from cryolive.db import make_engine
    from cryolive.db.repo import staff

    engine = make_engine(world.url)
    with Session(engine) as session:
        # the 12 movies of raw were recorded a minute apart from 09:00 on 2026-11-20
        at = dt.datetime(2026, 11, 20, 9, 11, 30)
        rates = {r.microscope: r for r in staff.microscope_rates(session, now=at)}
        assert rates["m02"].last_movie is not None
        recent = rates["m02"].recent
        assert recent >= 12 and rates["m02"].movies_per_hour == pytest.approx(recent * 4)
        later = {r.microscope: r for r in staff.microscope_rates(session, now=at.replace(hour=11))}
        assert later["m02"].recent == 0 and later["m02"].movies_per_hour == 0
        assert later["m02"].last_movie == rates["m02"].last_movie
    engine.dispose()
    now = clients["staff"][0].get("/api/staff/rates").json()
    m02 = next(r for r in now if r["microscope"] == "m02")
    # other tests of this world may record movies now: the API's figures as the repository's
    assert m02["movies_per_hour"] == pytest.approx(m02["recent"] * 4) and m02["last_movie"]


def test_worker_health_from_heartbeats(clients: Any, world: Any) -> None:
    import datetime as dt

    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from cryolive.db import make_engine
    from cryolive.db.models import WorkerHeartbeat
    from cryolive.db.repo import workers

    engine = make_engine(world.url)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).replace(microsecond=0)
    beat = {"queues": ["ctf"], "consumers": 2, "host": "gpu-7", "handled": 0}
    try:
        with Session(engine) as session, session.begin():
            # ctf on gpu-7: a process that died an hour ago, and its successor, beating now
            old = now - dt.timedelta(hours=1)
            workers.record_beat(
                session,
                service="ctf",
                pid=100,
                started_at=old - dt.timedelta(hours=1),
                at=old,
                **beat,
            )
            workers.record_beat(
                session, service="ctf", pid=200, started_at=old, at=now, **beat | {"handled": 7}
            )
            # motioncorr on gpu-7: silent for 5 minutes
            workers.record_beat(
                session,
                service="motioncorr",
                pid=300,
                started_at=old,
                at=now - dt.timedelta(minutes=5),
                **beat | {"queues": ["motioncorr"]},
            )
            with pytest.raises(ValueError, match="heartbeat"):
                workers.record_beat(session, service="", pid=1, started_at=now, at=now, **beat)
        got = clients["staff"][0].get("/api/staff/workers").json()
        ctf = next(w for w in got if w["service"] == "ctf" and w["host"] == "gpu-7")
        assert (ctf["pid"], ctf["alive"], ctf["restarts"], ctf["handled"]) == (200, True, 1, 7)
        assert ctf["beat_at"] == now.isoformat()
        mc = next(w for w in got if w["service"] == "motioncorr" and w["host"] == "gpu-7")
        assert (mc["alive"], mc["restarts"]) == (False, 0)
        page = clients["staff"][0].get("/staff").text
        assert 'data-service="ctf" data-host="gpu-7"' in page and "silent" in page
        assert clients["member"][0].get("/api/staff/workers").status_code == 403
    finally:
        with Session(engine) as session, session.begin():
            session.execute(sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.host == "gpu-7"))
        engine.dispose()
