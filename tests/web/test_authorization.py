"""Every route of the app, asked by anonymous, a non-member, a member and staff.

The table below must name every route the app has: a new route without an expectation fails
``test_every_route_has_an_expectation``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

ROLES = ("anonymous", "outsider", "member", "staff")
LOGINS = {"outsider": "bob", "member": "alice", "staff": "carol"}
PUBLIC = (200, 200, 200, 200)
MEMBERS_PAGE = (303, 403, 200, 200)  # anonymous: redirected to the login page
MEMBERS_API = (401, 403, 200, 200)
STAFF_PAGE = (303, 403, 403, 200)
STAFF_API = (401, 403, 403, 200)

EXPECTED: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/"): (303, 303, 303, 303),
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): (401, 401, 401, 401),  # a wrong password, with a valid CSRF token
    ("POST", "/logout"): (401, 303, 303, 303),
    ("GET", "/api/me"): (401, 200, 200, 200),
    ("GET", "/visits"): (303, 200, 200, 200),
    ("GET", "/api/visits"): (401, 200, 200, 200),
    ("GET", "/visits/{visit}"): MEMBERS_PAGE,
    ("GET", "/api/visits/{visit}"): MEMBERS_API,
    ("GET", "/collections/{data_collection_id}"): MEMBERS_PAGE,
    ("GET", "/api/collections/{data_collection_id}"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/series"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/events"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/jobs"): MEMBERS_API,
    ("GET", "/api/movies/{movie_id}"): MEMBERS_API,
    ("GET", "/api/movies/{movie_id}/files/{kind}"): MEMBERS_API,
    ("GET", "/api/movies/{movie_id}/ctf"): MEMBERS_API,
    ("GET", "/api/jobs/{auto_proc_program_id}"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/curation"): MEMBERS_API,
    ("PUT", "/api/collections/{data_collection_id}/curation"): MEMBERS_API,
    ("POST", "/api/movies/{movie_id}/curation"): MEMBERS_API,
    ("POST", "/api/collections/{data_collection_id}/reprocess"): (401, 403, 201, 201),
    ("POST", "/collections/{data_collection_id}/reprocess"): (401, 403, 303, 303),
    ("POST", "/api/jobs/{auto_proc_program_id}/stop"): MEMBERS_API,
    ("POST", "/jobs/{auto_proc_program_id}/stop"): (401, 403, 303, 303),
    ("GET", "/staff"): STAFF_PAGE,
    ("GET", "/api/staff/microscopes"): STAFF_API,
    ("GET", "/api/staff/failures"): STAFF_API,
    ("GET", "/api/staff/rates"): STAFF_API,
    ("GET", "/api/staff/workers"): STAFF_API,
    ("GET", "/api/staff/queues"): STAFF_API,
    ("POST", "/api/staff/queues/{queue}/dead/{message_id}/{action}"): (401, 403, 403, 200),
    ("POST", "/staff/queues/{queue}/dead/{message_id}/{action}"): (401, 403, 403, 303),
    ("GET", "/api/staff/collection-failures"): STAFF_API,
    ("GET", "/api/staff/throughput"): STAFF_API,
    ("GET", "/api/collections/{data_collection_id}/classes"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/classes/history"): MEMBERS_API,
    ("GET", "/api/classes/{particle_classification_id}/image"): MEMBERS_API,
    ("POST", "/api/classes/{particle_classification_id}/choice"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/3d"): MEMBERS_API,
    ("GET", "/api/3d/{map_id}/file"): MEMBERS_API,
    ("GET", "/api/3d/{map_id}/preview"): MEMBERS_API,
    ("GET", "/api/3d/{map_id}/fsc"): MEMBERS_API,
    ("GET", "/api/3d/{map_id}/angles"): MEMBERS_API,
    ("POST", "/api/visits/{visit}/collections"): (401, 403, 201, 201),
    ("POST", "/visits/{visit}/collections"): (401, 403, 303, 303),
    ("GET", "/collections/{data_collection_id}/atlas"): MEMBERS_PAGE,
    ("GET", "/api/collections/{data_collection_id}/atlas"): MEMBERS_API,
    ("GET", "/api/collections/{data_collection_id}/atlas/image"): MEMBERS_API,
    ("GET", "/grid-squares/{grid_square_id}"): MEMBERS_PAGE,
    ("GET", "/api/grid-squares/{grid_square_id}"): MEMBERS_API,
    ("GET", "/api/grid-squares/{grid_square_id}/image"): MEMBERS_API,
    ("GET", "/api/foil-holes/{foil_hole_id}/movies"): MEMBERS_API,
    ("GET", "/vendor/plotly.min.js"): PUBLIC,
    ("GET", "/assets/{filename}"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/api/visits/{visit}/alerts"): MEMBERS_API,
    ("POST", "/visits/{visit}/alerts"): (401, 403, 303, 303),
    ("GET", "/api/alerts"): STAFF_API,
    ("GET", "/api/collections/{data_collection_id}/pause"): MEMBERS_API,
    # sorted, each pause comes before its resume: the shared collection ends unpaused
    ("POST", "/api/collections/{data_collection_id}/pause"): MEMBERS_API,
    ("POST", "/api/collections/{data_collection_id}/resume"): MEMBERS_API,
    ("POST", "/collections/{data_collection_id}/pause"): (401, 403, 303, 303),
    ("POST", "/collections/{data_collection_id}/resume"): (401, 403, 303, 303),
    ("GET", "/visits/{visit}/report.pdf"): MEMBERS_PAGE,  # a download: anonymous to login
}


def register_body() -> dict[str, Any]:
    """A hand registration of a new raw folder (each call a different one)."""
    return {
        "folder": f"raw{uuid.uuid4().int % 10**9}",
        "software": "EPU",
        "file_extension": "tiff",
        "pixel_size_a": 0.83,
        "dose_per_frame_e_per_a2": 1.1,
        "voltage_kv": 300,
    }


REPROCESS = {
    "pixel_size_a": 0.83,
    "dose_per_frame_e_per_a2": 1.2,
    "particle_diameter_min_a": 100,
    "particle_diameter_max_a": 160,
}


def _walk(routes: Any, prefix: str = "") -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if isinstance(route, Mount):
            continue  # /static: cryolive's own CSS and JS
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI keeps included routers as routes of their own
            found |= _walk(included.routes, prefix + route.include_context.prefix)
            continue
        assert isinstance(route, APIRoute | Route), route
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, prefix + route.path))
    return found


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    return _walk(app.routes)


def test_every_route_has_an_expectation(app: FastAPI) -> None:
    routes = app_routes(app)
    assert routes - EXPECTED.keys() == set(), "a route without an authorisation expectation"
    assert EXPECTED.keys() - routes == set(), "an expectation for a route that is gone"


def _log_in(client: TestClient, login: str) -> str:
    """Log ``client`` in as ``login``; its CSRF token."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found
    form = {"login": login, "password": f"password-{login}", "csrf_token": found.group(1)}
    assert client.post("/login", data=form).status_code == 303
    return str(client.get("/api/me").json()["csrf_token"])


def _request(world: Any, client: Any, csrf: str, method: str, path: str) -> Any:
    values = {
        "visit": world.visit,
        "data_collection_id": world.data_collection_id,
        "movie_id": world.movie_ids[0],
        "kind": "snapshot",
        "auto_proc_program_id": world.requested_job() if method == "POST" else 1,
        "queue": "motioncorr",
        "message_id": world.dead_letter() if method == "POST" else "",
        "action": "discard",
        "particle_classification_id": world.class_ids[0],
        "map_id": world.refinement_id,
        "grid_square_id": world.grid_square_id,
        "foil_hole_id": world.foil_hole_id,
        "filename": client.app.state.assets.url("cryolive.css").removeprefix("/assets/"),
    }
    url = path.format(**values)
    if method == "GET":
        return client.get(url, params={"limit": 1} if url.endswith("/events") else None)
    headers = {"X-CSRF-Token": csrf}
    if method == "PUT":  # curation thresholds: none, so nothing another test sees changes
        return client.put(url, json={}, headers=headers)
    if url.endswith("/curation"):  # a movie's manual decision: cleared
        return client.post(url, json={"decision": None}, headers=headers)
    if path.startswith("/api/"):
        body = REPROCESS if "reprocess" in url else register_body() if "/visits/" in url else None
        if url.endswith("/choice"):
            body = {"selected": None}  # back to the automatic selection: changes nothing
        return client.post(url, json=body, headers=headers)
    form = {"csrf_token": csrf}
    if url == "/login":
        form |= {"login": "alice", "password": "not-her-password"}
    if "reprocess" in url:
        form |= {k: str(v) for k, v in REPROCESS.items()}
    if url.startswith("/visits/"):
        form |= {k: str(v) for k, v in register_body().items()}
    return client.post(url, data=form)


def test_each_role_gets_exactly_what_it_should(app: FastAPI, clients: Any, world: Any) -> None:
    wrong = []
    for method, path in sorted(app_routes(app)):
        for role, expected in zip(ROLES, EXPECTED[(method, path)], strict=True):
            client, csrf = clients[role]
            if (method, path) == ("POST", "/logout") and role != "anonymous":
                # logging out ends the session on the server: a client of its own
                with TestClient(app, follow_redirects=False) as own:
                    response = _request(world, own, _log_in(own, LOGINS[role]), method, path)
                    assert own.get("/api/me").status_code == 401
            else:
                saved = list(client.cookies.jar)
                response = _request(world, client, csrf, method, path)
                client.cookies.clear()  # logging in must not change the next checks
                for cookie in saved:
                    client.cookies.jar.set_cookie(cookie)
            if response.status_code != expected:
                wrong.append(f"{role} {method} {path}: {response.status_code}, want {expected}")
            if response.status_code >= 400:
                assert response.status_code != 500
                detail = response.json()["detail"] if path.startswith("/api/") else response.text
                assert detail, f"{role} {method} {path}: an error without a message"
    assert wrong == []


def test_members_see_only_their_visits(clients: Any, world: Any) -> None:
    def names(role: str) -> set[str]:
        return {v["name"] for v in clients[role][0].get("/api/visits").json()}

    assert names("member") == {world.visit}
    assert names("outsider") == {world.other_visit}
    assert names("staff") >= {world.visit, world.other_visit}
    page = clients["outsider"][0].get("/visits").text
    assert world.other_visit in page and world.visit not in page
