"""The curation API: thresholds read and set by the visit's members, a movie accepted or
rejected by hand, bad values refused with 422 naming the field, and never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def restored(clients: Any, world: Any) -> Iterator[None]:
    """The shared world as it was: no thresholds, no manual decisions."""
    yield
    client, csrf = clients["member"]
    headers = {"X-CSRF-Token": csrf}
    url = f"/api/collections/{world.data_collection_id}/curation"
    assert client.put(url, json={}, headers=headers).status_code == 200
    for movie in world.movie_ids:
        client.post(f"/api/movies/{movie}/curation", json={"decision": None}, headers=headers)


def test_members_set_thresholds_and_the_accepted_set_follows(
    clients: Any, world: Any, restored: None
) -> None:
    client, csrf = clients["member"]
    url = f"/api/collections/{world.data_collection_id}/curation"
    before = client.get(url).json()
    assert before["counts"]["accepted"] == 12 and before["counts"]["rejected"] == 0
    assert before["movies"]["total_motion_a"] == [10.0 + i for i in range(12)]
    assert before["movies"]["defocus_um"] == pytest.approx([1.5 + 0.1 * i for i in range(12)])

    # total motion 10 + i Å, resolution 3 + 0.25 i Å
    body = {"total_motion_max_a": 19.5, "ctf_resolution_max_a": 4.6}
    answer = client.put(url, json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    after = client.get(url).json()
    assert after["own"] and after["changed_by"] == "alice"
    assert after["thresholds"]["total_motion_max_a"] == 19.5
    assert after["counts"]["accepted"] == 7  # movies 0-6: resolution up to 4.5 Å
    assert after["counts"]["by_reason"]["ctf_resolution"] == 5
    assert after["counts"]["by_reason"]["total_motion"] == 2
    assert after["movies"]["accepted"] == [True] * 7 + [False] * 5
    assert after["movies"]["reasons"][11] == ["total_motion", "ctf_resolution"]

    staff, staff_csrf = clients["staff"]
    movie = world.movie_ids[0]
    answer = staff.post(
        f"/api/movies/{movie}/curation",
        json={"decision": "reject"},
        headers={"X-CSRF-Token": staff_csrf},
    )
    assert answer.status_code == 200, answer.text
    decided = answer.json()
    assert decided["counts"]["accepted"] == 6
    assert decided["movies"]["manual"][0] == "reject"
    assert decided["movies"]["reasons"][0] == ["manual"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"defocus_min_um": 3.0, "defocus_max_um": 1.0}, "defocus_min_um"),
        ({"total_motion_max_a": -1}, "total_motion_max_a"),
        ({"ice_max": "thick"}, "ice_max"),
        ({"total_motion": 3}, "total_motion"),
        ({"particles_min": 2.5}, "particles_min"),
        ([1, 2], "body"),
    ],
)
def test_bad_thresholds_answer_422_naming_the_field(
    clients: Any, world: Any, body: Any, field: str
) -> None:
    client, csrf = clients["member"]
    url = f"/api/collections/{world.data_collection_id}/curation"
    answer = client.put(url, json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    assert client.get(url).json()["counts"]["rejected"] == 0  # nothing was changed


def test_manual_decisions_refuse_bad_input_and_unknown_movies(clients: Any, world: Any) -> None:
    client, csrf = clients["member"]
    headers = {"X-CSRF-Token": csrf}
    movie = world.movie_ids[1]
    answer = client.post(
        f"/api/movies/{movie}/curation", json={"decision": "maybe"}, headers=headers
    )
    assert answer.status_code == 422 and "decision" in answer.text
    answer = client.post(
        "/api/movies/999999/curation", json={"decision": "reject"}, headers=headers
    )
    assert answer.status_code == 404
    answer = client.post(f"/api/movies/{movie}/curation", json={"decision": "reject"}, headers={})
    assert answer.status_code == 403 and "CSRF" in answer.text


def test_only_the_visits_members_and_staff_may_curate(clients: Any, world: Any) -> None:
    url = f"/api/collections/{world.data_collection_id}/curation"
    outsider, csrf = clients["outsider"]
    assert outsider.get(url).status_code == 403
    answer = outsider.put(url, json={"total_motion_max_a": 1}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 403
    answer = outsider.post(
        f"/api/movies/{world.movie_ids[0]}/curation",
        json={"decision": "reject"},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 403
    anonymous, csrf = clients["anonymous"]
    assert anonymous.get(url).status_code == 401
    member, _ = clients["member"]
    assert member.get(url).json()["counts"]["rejected"] == 0
