"""Alerts in the web (a visit's with the e-mail opt-in, the staff's, the API) and pausing a
data collection's processing: members only."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import alerts


def _raise(world: Any, message: str) -> int:
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        found = alerts.raise_alert(
            db,
            key=f"stalled:dc:{world.data_collection_id}:{uuid.uuid4().hex[:6]}",
            rule="stalled",
            message=message,
            now=dt.datetime(2026, 11, 20, 10),
            session_id=world.session_id,
            data_collection_id=world.data_collection_id,
        )
        assert found is not None
        alert_id = found.alert_id
    engine.dispose()
    return alert_id


def test_a_visits_alerts_are_listed_for_its_members_and_staff(clients: Any, world: Any) -> None:
    message = f"no new movie for 31 min ({uuid.uuid4().hex[:6]})"
    alert_id = _raise(world, message)
    member, _ = clients["member"]
    listed = member.get(f"/api/visits/{world.visit}/alerts").json()
    (mine,) = [a for a in listed["alerts"] if a["alert_id"] == alert_id]
    assert mine["message"] == message and mine["cleared_at"] is None
    assert message in member.get(f"/visits/{world.visit}").text
    outsider, _ = clients["outsider"]
    assert outsider.get(f"/api/visits/{world.visit}/alerts").status_code == 403
    assert outsider.get("/api/alerts").status_code == 403
    staff, _ = clients["staff"]
    assert alert_id in [a["alert_id"] for a in staff.get("/api/alerts").json()]
    assert message in staff.get("/staff").text
    anonymous, _ = clients["anonymous"]
    assert anonymous.get(f"/api/visits/{world.visit}/alerts").status_code == 401
    assert member.get("/api/visits/xx-1/alerts").status_code == 404


def test_members_opt_in_to_alert_mail(clients: Any, world: Any) -> None:
    member, csrf = clients["member"]
    url = f"/visits/{world.visit}/alerts"
    on = member.post(url, data={"csrf_token": csrf, "email": "on"})
    assert on.status_code == 303
    assert member.get(f"/api/visits/{world.visit}/alerts").json()["email"] is True
    member.post(url, data={"csrf_token": csrf})
    assert member.get(f"/api/visits/{world.visit}/alerts").json()["email"] is False
    assert member.post(url, data={"email": "on"}).status_code == 403  # no CSRF token
    outsider, token = clients["outsider"]
    assert outsider.post(url, data={"csrf_token": token, "email": "on"}).status_code == 403


def test_pause_and_resume_a_collection(clients: Any, world: Any) -> None:
    member, csrf = clients["member"]
    dc = world.data_collection_id
    headers = {"X-CSRF-Token": csrf}
    member.post(f"/api/collections/{dc}/resume", headers=headers)  # another test may pause it
    assert "Pause processing" in member.get(f"/collections/{dc}").text
    try:
        paused = member.post(f"/api/collections/{dc}/pause", headers=headers)
        assert paused.status_code == 200
        assert paused.json() == {"data_collection_id": dc, "paused": True, "held": 0}
        again = member.post(f"/api/collections/{dc}/pause", headers=headers)
        assert again.json()["paused"] is True
        page = member.get(f"/collections/{dc}").text
        assert "Resume processing" in page and "paused" in page
        outsider, token = clients["outsider"]
        refused = outsider.post(f"/api/collections/{dc}/resume", headers={"X-CSRF-Token": token})
        assert refused.status_code == 403
        assert member.get(f"/api/collections/{dc}/pause").json()["paused"] is True
    finally:
        resumed = member.post(f"/collections/{dc}/resume", data={"csrf_token": csrf})
    assert resumed.status_code == 303
    assert member.get(f"/api/collections/{dc}/pause").json()["paused"] is False
    assert member.post(f"/api/collections/{dc}/pause").status_code == 403  # no CSRF token
    assert member.post("/api/collections/0/pause", headers=headers).status_code == 422
