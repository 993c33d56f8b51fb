"""No 500 from input: ids past 64 bits, dates past the calendar and huge strings are 4xx."""

from __future__ import annotations

from typing import Any

import pytest

BIG = 2**64

ID_ROUTES = [
    "/api/movies/{big}",
    "/api/movies/{big}/files/snapshot",
    "/api/classes/{big}/image",
    "/api/collections/{big}",
    "/api/collections/{big}/series",
    "/api/collections/{big}/classes",
    "/api/collections/{big}/jobs",
    "/api/collections/{big}/events",
    "/api/jobs/{big}",
    "/collections/{big}",
    "/api/collections/{dc}/series?after_movie_id={big}",
    "/api/collections/{dc}/series?motion_program={big}",
]


@pytest.mark.parametrize("route", ID_ROUTES)
def test_an_id_past_64_bits_is_a_422(clients: Any, world: Any, route: str) -> None:
    client, _ = clients["staff"]
    response = client.get(route.format(big=BIG, dc=world.data_collection_id))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "route", ["/api/collections/{big}/reprocess", "/api/jobs/{big}/stop", "/jobs/{big}/stop"]
)
def test_a_post_with_an_id_past_64_bits_is_a_422(clients: Any, route: str) -> None:
    client, csrf = clients["member"]
    response = client.post(route.format(big=BIG), json={}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "until",
    [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59",
    ],
)
@pytest.mark.parametrize("route", ["/api/staff/throughput", "/staff"])
def test_a_date_past_the_calendar_is_a_422(clients: Any, route: str, until: str) -> None:
    client, _ = clients["staff"]
    response = client.get(route, params={"until": until, "hours": 744})
    assert response.status_code == 422, response.text
    assert "until" in response.text


def test_a_date_in_range_still_works(clients: Any) -> None:
    client, _ = clients["staff"]
    response = client.get("/api/staff/throughput", params={"until": "2026-11-20T12:00:00+01:00"})
    assert response.status_code == 200 and response.json()["hours"] == 24


@pytest.mark.parametrize(
    "route",
    ["/api/visits/{long}", "/visits/{long}", "/api/staff/queues/{long}/dead/x/discard"],
)
def test_a_huge_name_is_refused_before_the_database(clients: Any, route: str) -> None:
    client, csrf = clients["staff"]
    url = route.format(long="x" * 5000)
    response = (
        client.post(url, headers={"X-CSRF-Token": csrf}) if "dead" in url else client.get(url)
    )
    assert response.status_code == 422, response.text


def test_a_huge_next_on_the_login_page_is_refused(clients: Any) -> None:
    client, _ = clients["anonymous"]
    response = client.get("/login", params={"next": "/" + "x" * 5000})
    assert response.status_code == 422
    assert client.get("/login", params={"next": "/visits"}).status_code == 200
