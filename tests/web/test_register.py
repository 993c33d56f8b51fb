"""Registering a data collection by hand from the visit page: the row the watcher would
write, and clear refusals of folders outside the visit and of bad values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

GOOD = {
    "software": "SerialEM",
    "file_extension": "eer",
    "pixel_size_a": 0.72,
    "dose_per_frame_e_per_a2": 0.05,
    "voltage_kv": 300,
    "frames": 1000,
}


def _folder() -> str:
    return f"raw{uuid.uuid4().int % 10**8}"


def test_member_registers_a_folder(clients: Any, world: Any) -> None:
    client, csrf = clients["member"]
    folder = _folder()
    url = f"/api/visits/{world.visit}/collections"
    created = client.post(url, json=GOOD | {"folder": folder}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text
    dc = created.json()["data_collection_id"]
    shown = client.get(f"/api/collections/{dc}").json()
    assert shown["directory"] == f"{world.root}/{world.visit}/{folder}/"
    assert shown["file_template"] == "Frames/*.eer"
    assert shown["pixel_size_a"] == pytest.approx(0.72) and shown["voltage_kv"] == 300
    assert shown["dose_e_per_a2"] == pytest.approx(50.0)  # 0.05 e/Å² per frame, 1000 frames
    # the same folder again, by its absolute path: it exists already
    again = client.post(
        url,
        json=GOOD | {"folder": f"{world.root}/{world.visit}/{folder}"},
        headers={"X-CSRF-Token": csrf},
    )
    assert again.status_code == 409 and "already a data collection" in again.json()["detail"]
    assert client.post(url, json=GOOD | {"folder": _folder()}).status_code == 403  # no CSRF


def test_the_form_registers_and_opens_the_collection(clients: Any, world: Any) -> None:
    client, csrf = clients["staff"]
    assert 'id="register"' in client.get(f"/visits/{world.visit}").text
    form = {k: str(v) for k, v in GOOD.items() if k != "frames"} | {"folder": _folder()}
    response = client.post(
        f"/visits/{world.visit}/collections", data=form | {"csrf_token": csrf, "frames": ""}
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/collections/")
    page = client.get(response.headers["location"]).text
    assert f"{world.root}/{world.visit}/{form['folder']}/" in page
    bad = client.post(
        f"/visits/{world.visit}/collections",
        data=form | {"csrf_token": csrf, "pixel_size_a": "-1"},
    )
    assert bad.status_code == 422 and "pixel_size_a" in bad.text and "not registered" in bad.text


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"folder": "../bi10002-1/raw"}, "'..' is not allowed"),
        ({"folder": "raw/../../etc"}, "'..' is not allowed"),
        ({"folder": "/data/bi10002-1/raw5"}, "not inside the visit's folder"),
        ({"folder": "/etc"}, "not inside the visit's folder"),
        ({"folder": "/data/bi10001-1"}, "not inside the visit's folder"),
        ({"folder": "raw5/GridSquare_1"}, "must be a raw folder"),
        ({"folder": "movies"}, "must be a raw folder"),
        ({"folder": "raw5\\x"}, "backslashes"),
        ({"folder": ""}, "folder"),
        ({"file_extension": "png"}, "file_extension"),
        ({"software": "Leginon"}, "software"),
        ({"pixel_size_a": 0}, "pixel_size_a"),
        ({"dose_per_frame_e_per_a2": "lots"}, "dose_per_frame_e_per_a2"),
        ({"voltage_kv": 3000}, "voltage_kv"),
        ({"frames": 0}, "frames"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    clients: Any, world: Any, change: dict[str, Any], problem: str
) -> None:
    client, csrf = clients["member"]
    body = GOOD | {"folder": _folder()} | change
    response = client.post(
        f"/api/visits/{world.visit}/collections", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]


def test_outsiders_cannot_register(clients: Any, world: Any) -> None:
    client, csrf = clients["outsider"]
    response = client.post(
        f"/api/visits/{world.visit}/collections",
        json=GOOD | {"folder": _folder()},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 403
    missing = clients["staff"][0].post(
        "/api/visits/bi99999-1/collections",
        json=GOOD | {"folder": _folder()},
        headers={"X-CSRF-Token": clients["staff"][1]},
    )
    assert missing.status_code == 404
