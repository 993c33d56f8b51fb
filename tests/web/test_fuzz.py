"""No 5xx from input: every route of the app, its path and query parameters (and the bodies of
those that take one) fuzzed with hypothesis, for an anonymous user, a member and staff.

Routes come from ``app.routes`` (pages and forms, left out of the OpenAPI description,
included); each gets ``EXAMPLES`` draws per role. Values mix the world's real ids (so the
code behind the permission checks runs), numbers past 64 bits, dates past the calendar,
unicode, control characters and path tricks.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount

from cryolive.messaging import open_transport
from cryolive.web import create_app

EXAMPLES = 20
ROLES = ("anonymous", "member", "staff")
# Ending the session or replacing it with the login page's would log the fuzzing client out.
ANONYMOUS_ONLY = {"/login", "/logout"}
FORM_FIELDS = (
    "pixel_size_a",
    "dose_per_frame_e_per_a2",
    "gain_reference",
    "particle_diameter_min_a",
    "particle_diameter_max_a",
    "box_size_px",
    "number_of_classes",
    "request_key",
    "folder",
    "software",
    "file_extension",
    "voltage_kv",
    "login",
    "password",
    "next",
)
ODD = [
    "",
    "0",
    "-1",
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "9" * 40,
    "1e309",
    "nan",
    "inf",
    "1.5",
    "true",
    "null",
    "..",
    "../../etc/passwd",
    "/etc/shadow",
    "%00",
    "\x00",
    "a\nb",
    "ÅLICE",
    "alíce",
    "🧊",
    "x" * 5000,
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59",
    "10000-01-01",
    "2026-02-30",
    "1969-12-31T23:59:59Z",
]


def _values(ids: list[int]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([str(i) for i in ids]),
        st.sampled_from(ODD),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.datetimes().map(lambda d: d.isoformat()),
        st.text(max_size=40),
    )


def _json_values(ids: list[int]) -> st.SearchStrategy[Any]:
    return st.one_of(
        _values(ids),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.none(),
        st.booleans(),
        st.lists(st.integers(), max_size=3),
    )


def _params(dependant: Dependant) -> tuple[list[str], list[str]]:
    """Path and query parameters of a route, its dependencies' included."""
    path = [p.alias for p in dependant.path_params]
    query = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        more = _params(sub)
        path, query = path + more[0], query + more[1]
    return sorted(set(path)), sorted(set(query))


def _routes(app: FastAPI) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path, path parameters, query parameters) of every route."""
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = str(context.path)
        if isinstance(route, Mount):
            out.append(("GET", path + "/{path}", ["path"], []))
            continue
        methods = sorted((context.methods or {"GET"}) - {"HEAD"})
        if isinstance(route, APIRoute):
            names, query = _params(route.dependant)
        else:
            names, query = [], []
        out.extend((m, path, names, query) for m in methods)
    return out


def _ids(world: Any) -> list[int]:
    return [
        world.session_id,
        world.data_collection_id,
        world.outside_collection_id,
        world.movie_ids[0],
        world.outside_movie_id,
        world.foreign_movie_id,
        world.motion_program_id,
        world.failed_program_id,
        *world.class_ids[:1],
        world.outside_class_id,
        world.refinement_id,
        world.outside_map_id,
    ]


@pytest.fixture(scope="module")
def fuzz_app(world: Any) -> FastAPI:
    """An app of its own: the shared clients' sessions and throttle stay untouched."""
    return create_app(world.settings(), transport=open_transport(world.broker_url))


def _client(app: FastAPI, role: str) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    if role == "anonymous":
        return client, token.group(1)
    login = {"member": "alice", "staff": "carol"}[role]
    response = client.post(
        "/login",
        data={"login": login, "password": f"password-{login}", "csrf_token": token.group(1)},
    )
    assert response.status_code == 303, response.text
    return client, str(client.get("/api/me").json()["csrf_token"])


def _fuzz_route(
    client: TestClient, csrf: str, ids: list[int], route: tuple[str, str, list[str], list[str]]
) -> None:
    """Draw ``EXAMPLES`` requests to one route; fail on the first 5xx (or exception)."""
    method, path, names, query = route

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        url = path
        for name in names:
            value = data.draw(_values(ids), label=name)
            url = url.replace("{" + name + "}", quote(value, safe=""))
        params = {q: data.draw(_values(ids), label=q) for q in query}
        if path.endswith("/events"):  # a live stream: one update, then the answer ends
            params["limit"] = "1"
        kwargs: dict[str, Any] = {"params": params, "headers": {"X-CSRF-Token": csrf}}
        if method == "POST" and path.startswith("/api/"):
            fields = st.sampled_from(FORM_FIELDS)
            kwargs["json"] = data.draw(
                st.one_of(st.dictionaries(fields, _json_values(ids)), _json_values(ids)),
                label="body",
            )
        elif method == "POST":
            form = data.draw(st.dictionaries(st.sampled_from(FORM_FIELDS), _values(ids)))
            kwargs["data"] = form | {"csrf_token": csrf}
        response = client.request(method, url, **kwargs)
        assert response.status_code < 500, (method, url, params, response.text[:300])

    fuzz()


@pytest.mark.parametrize("role", ROLES)
def test_no_route_answers_input_with_a_server_error(
    fuzz_app: FastAPI, world: Any, role: str
) -> None:
    client, csrf = _client(fuzz_app, role)
    routes = [r for r in _routes(fuzz_app) if role == "anonymous" or r[1] not in ANONYMOUS_ONLY]
    described = client.get("/openapi.json").json()["paths"]
    # every operation of the OpenAPI description is fuzzed, and the pages and forms besides
    assert {(m.upper(), p) for p, ops in described.items() for m in ops} <= {
        (m, p) for m, p, _, _ in routes
    }
    assert len(routes) > len(described)
    started = time.monotonic()
    for route in routes:
        _fuzz_route(client, csrf, _ids(world), route)
    client.close()
    assert time.monotonic() - started < 60
