"""Abuse limits: reprocess requests per data collection (requested or running at once) and per
person per hour; an over-limit request is a 429 that says which limit and what to do."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, visits
from cryolive.web import create_app, reprocess

BODY = {
    "pixel_size_a": 0.83,
    "dose_per_frame_e_per_a2": 1.2,
    "particle_diameter_min_a": 100,
    "particle_diameter_max_a": 160,
}


@pytest.fixture(scope="module")
def limited(world: Any) -> tuple[FastAPI, int, list[str]]:
    """An app allowing 2 open requests per collection and 3 per person an hour; two new
    members of the visit and a new data collection, so no other test's requests count."""
    logins = [f"{name}{uuid.uuid4().hex[:6]}" for name in ("dave", "erin")]
    engine = make_engine(world.url)
    with Session(engine) as session, session.begin():
        for login in logins:
            person = visits.ensure_person(session, login=login, given_name=login)
            visits.set_password(session, person_id=person, password="password-limited")
            visits.add_member(
                session, session_id=world.session_id, person_id=person, role="Team Member"
            )
        spec = collections.DataCollectionSpec(
            session_id=world.session_id,
            image_directory=f"{world.root}/{world.visit}/raw8/",
            file_template="*.tiff",
            voltage_kv=300,
            pixel_size_a=0.83,
            total_exposed_dose_e_per_a2=50,
        )
        dc = collections.register_data_collection(session, spec=spec)[1]
    engine.dispose()
    settings = world.settings(reprocess_open_per_collection=2, reprocess_per_user_hour=3)
    return create_app(settings), dc, logins


def _client(app: FastAPI, login: str, password: str) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    form = {"login": login, "password": password, "csrf_token": token.group(1)}
    assert client.post("/login", data=form).status_code == 303
    return client, str(client.get("/api/me").json()["csrf_token"])


def test_reprocess_requests_are_limited_per_collection_and_per_person(
    limited: tuple[FastAPI, int, list[str]],
) -> None:
    app, dc, (dave, erin) = limited
    client, csrf = _client(app, dave, "password-limited")
    headers = {"X-CSRF-Token": csrf}

    def ask(key: str) -> Any:
        body = BODY | {"request_key": key}
        return client.post(f"/api/collections/{dc}/reprocess", json=body, headers=headers)

    first, second = ask("limit-key-1"), ask("limit-key-2")
    assert first.status_code == second.status_code == 201
    third = ask("limit-key-3")
    assert third.status_code == 429
    assert "requested or running" in third.json()["detail"]
    again = ask("limit-key-1")  # a repeated request is the same request, not a new one
    assert again.status_code == 201 and again.json() == first.json()

    stop = f"/api/jobs/{first.json()['auto_proc_program_id']}/stop"
    assert client.post(stop, headers=headers).status_code == 200
    assert ask("limit-key-3").status_code == 201  # a slot freed; dave's third this hour

    stop = f"/api/jobs/{second.json()['auto_proc_program_id']}/stop"
    assert client.post(stop, headers=headers).status_code == 200
    fourth = ask("limit-key-4")
    assert fourth.status_code == 429 and "per person in an hour" in fourth.json()["detail"]
    form = client.post(
        f"/collections/{dc}/reprocess",
        data={k: str(v) for k, v in BODY.items()} | {"csrf_token": csrf},
    )
    assert form.status_code == 429 and "per person in an hour" in form.text

    other, other_csrf = _client(app, erin, "password-limited")  # the limit is dave's
    response = other.post(
        f"/api/collections/{dc}/reprocess", json=BODY, headers={"X-CSRF-Token": other_csrf}
    )
    assert response.status_code == 201, response.text
    for c in (client, other):
        c.close()


@pytest.mark.parametrize("world", ["mariadb"], indirect=True)  # SQLite has one writer at a time
def test_two_requests_at_one_instant_do_not_both_take_the_last_place(world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as session, session.begin():
        spec = collections.DataCollectionSpec(
            session_id=world.session_id,
            image_directory=f"{world.root}/{world.visit}/raw{uuid.uuid4().hex[:6]}/",
            file_template="*.tiff",
            voltage_kv=300,
            pixel_size_a=0.83,
        )
        dc = collections.register_data_collection(session, spec=spec)[1]
    limits = reprocess.Limits(open_per_collection=1, per_user_hour=100)

    def ask(session: Session, key: str) -> int:
        request = reprocess.ReprocessRequest(**BODY, request_key=key)
        return reprocess.record(
            session, data_collection_id=dc, request=request, login="alice", limits=limits
        )

    outcome: list[object] = []

    def second() -> None:
        with Session(engine) as session, session.begin():
            try:
                outcome.append(ask(session, "second-request"))
            except reprocess.TooMany as refused:
                outcome.append(refused)

    racer = threading.Thread(target=second)
    first = Session(engine)
    try:
        first.begin()
        ask(first, "first-request")  # holds the last place, not yet committed
        racer.start()
        racer.join(timeout=1.0)
        waited = racer.is_alive()
        first.commit()
    finally:
        first.close()  # else a failure here would leave a lock that hangs the teardown
        racer.join(timeout=60)
        engine.dispose()
    assert waited, "the second request did not wait for the first"
    assert len(outcome) == 1 and isinstance(outcome[0], reprocess.TooMany), outcome
