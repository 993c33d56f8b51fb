"""The JSON API: results as recorded, files from the movie's visit only, job control."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cryolive.db import ledger, make_engine
from cryolive.web.app import plotly_js

GOOD = {
    "pixel_size_a": 0.83,
    "dose_per_frame_e_per_a2": 1.2,
    "eer_grouping": 10,
    "particle_diameter_min_a": 100,
    "particle_diameter_max_a": 160,
    "box_size_px": 256,
    "number_of_classes": 20,
}


def test_series_holds_the_recorded_results(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    series = client.get(f"/api/collections/{world.data_collection_id}/series").json()
    assert series["movie_id"] == world.movie_ids
    assert series["defocus_a"] == [15_000.0 + 1_000 * i for i in range(12)]
    assert series["resolution_a"] == [3.0 + 0.25 * i for i in range(12)]
    assert series["total_motion_a"] == [10.0 + i for i in range(12)]
    assert series["ice_median"] == pytest.approx([0.5 + 0.01 * i for i in range(12)])
    assert series["particles"] == [100 + i for i in range(12)]
    later = client.get(
        f"/api/collections/{world.data_collection_id}/series",
        params={"after_movie_id": world.movie_ids[9]},
    ).json()
    assert later["movie_id"] == world.movie_ids[10:]


def test_series_zoom_gives_exact_values_and_points_thins_to_the_extremes(
    clients: Any, world: Any
) -> None:
    client, _ = clients["member"]
    url = f"/api/collections/{world.data_collection_id}/series"
    ids = world.movie_ids
    zoom = client.get(url, params={"from": ids[3], "to": ids[6]}).json()
    assert zoom["movie_id"] == ids[3:7]
    assert zoom["defocus_a"] == [15_000.0 + 1_000 * i for i in range(3, 7)]
    assert zoom["particles"] == [103, 104, 105, 106]
    # Every measure rises with the movie, so one bucket's extremes are the first and last movie.
    thin = client.get(url, params={"points": 4}).json()
    assert thin["movie_id"] == [ids[0], ids[-1]] and thin["downsampled_from"] == 12
    assert thin["resolution_a"] == [3.0, 3.0 + 0.25 * 11]
    assert client.get(url, params={"points": 50}).json()["movie_id"] == ids  # nothing to thin
    for bad in ({"from": ids[6], "to": ids[3]}, {"points": 1}, {"from": -1}):
        assert client.get(url, params=bad).status_code == 422


def test_collection_summary(clients: Any, world: Any) -> None:
    summary = clients["member"][0].get(f"/api/collections/{world.data_collection_id}").json()
    assert summary["movies"] == 12 and summary["pixel_size_a"] == pytest.approx(0.83)
    numbers = summary["summary"]
    assert numbers["ctf_estimated"] == 12 and numbers["best_resolution_a"] == 3.0
    assert numbers["mean_defocus_a"] == pytest.approx(20_500.0)
    assert numbers["particles"] == sum(100 + i for i in range(12))


def test_movie_and_its_files(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    movie = world.movie_ids[3]
    detail = client.get(f"/api/movies/{movie}").json()
    assert detail["defocus_a"] == 18_000.0 and detail["particles"] == 103
    assert set(detail["files"]) == {"snapshot", "fft", "ctf_fit", "drift", "picks"}
    folder = world.processed
    for kind, name in (("snapshot", "snapshot_3.png"), ("ctf_fit", "FoilHole_3_ctf_diag.png")):
        response = client.get(f"/api/movies/{movie}/files/{kind}")
        assert response.headers["content-type"] == "image/png"
        assert response.content == (folder / name).read_bytes()
    drift = client.get(f"/api/movies/{movie}/files/drift").json()
    assert drift["data"][0]["y"] == [0.0, 0.2, 3.3]


@pytest.mark.parametrize("kind", ["snapshot", "fft"])
def test_files_outside_the_visit_are_refused(clients: Any, world: Any, kind: str) -> None:
    # recorded as <root>/bi10001-1/../../secret.png and /etc/passwd
    response = clients["staff"][0].get(f"/api/movies/{world.outside_movie_id}/files/{kind}")
    assert response.status_code == 403
    assert "outside its visit" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/movies/{m}/files/..%2F..%2Fetc%2Fpasswd",
        "/api/movies/{m}/files/../../../etc/passwd",
        "/api/movies/{m}/files/%2Fetc%2Fpasswd",
        "/api/movies/{m}/files/ctf_fit%00",
        "/api/movies/0/files/snapshot",
        "/api/movies/abc",
        "/api/movies/999999/files/snapshot",
        "/api/collections/abc/series",
        "/api/collections/{dc}/series?after_movie_id=-1",
        "/api/collections/999999",
        "/api/jobs/999999",
        "/api/visits/not-a-visit",
        "/api/visits/zz99999-9",
        "/api/staff/failures?limit=0",
        "/static/../pyproject.toml",
        "/static/%2e%2e/app.py",
    ],
)
def test_broken_input_gets_a_clear_4xx(clients: Any, world: Any, path: str) -> None:
    client, _ = clients["staff"]
    url = path.format(m=world.movie_ids[0], dc=world.data_collection_id)
    response = client.get(url)
    assert 400 <= response.status_code < 500, (url, response.status_code)
    assert response.text and b"root:" not in response.content


def test_reprocess_records_a_request_and_stop_ends_it(clients: Any, world: Any) -> None:
    client, csrf = clients["member"]
    url = f"/api/collections/{world.data_collection_id}/reprocess"
    gain = f"{world.root}/{world.visit}/raw/gain.mrc"  # the visit's own raw folder
    body = GOOD | {"request_key": "double-click-1", "gain_reference": gain}
    first = client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    again = client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert first.status_code == again.status_code == 201
    program = first.json()["auto_proc_program_id"]
    assert again.json()["auto_proc_program_id"] == program  # one request, not two
    job = client.get(f"/api/jobs/{program}").json()
    assert job["status"] == "requested" and job["automatic"] is False
    # recorded under the run parameters' names (the form's names are aliases), as JSON
    assert job["parameters"]["box_px"] == "256" and "box_size_px" not in job["parameters"]
    assert json.loads(job["parameters"]["gain_path"]) == gain
    assert "class2d_classes" in job["parameters"]  # number_of_classes
    assert job["parameters"]["requested_by"] == "alice"
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():  # the pipeline has dispatched one movie of the run
        ledger.expect(db, items=[(ledger.work_key(program, "/m.tiff"), "q", b"{}")], now=1.0)
    stopped = client.post(f"/api/jobs/{program}/stop", headers={"X-CSRF-Token": csrf})
    assert stopped.status_code == 200
    with Session(engine) as db:  # its work is closed: the reconciler will not re-send it
        assert ledger.outcomes(db, program_id=program) == {"cancelled": 1}
    engine.dispose()
    job = client.get(f"/api/jobs/{program}").json()
    assert job["status"] == "stopped" and job["message"] == "stopped by alice"
    twice = client.post(f"/api/jobs/{program}/stop", headers={"X-CSRF-Token": csrf})
    assert twice.status_code == 409 and "already" in twice.json()["detail"]
    assert twice.json()["detail"].endswith("has already been stopped.")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pixel_size_a": -1}, "pixel_size_a"),
        ({"pixel_size_a": "abc"}, "pixel_size_a"),
        ({"particle_diameter_min_a": 300}, "must not exceed"),
        ({"box_size_px": 255}, "even"),
        ({"gain_reference": "/data/../../etc/shadow"}, "gain_reference"),
        ({"gain_reference": "relative/gain.mrc"}, "gain_reference"),
        ({"request_key": "../../x"}, "request_key"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_reprocess_refuses_bad_parameters(
    clients: Any, world: Any, change: dict[str, Any], message: str
) -> None:
    client, csrf = clients["member"]
    body = GOOD | change
    api = client.post(
        f"/api/collections/{world.data_collection_id}/reprocess",
        json=body,
        headers={"X-CSRF-Token": csrf},
    )
    assert api.status_code == 422 and message in api.json()["detail"]
    form = client.post(
        f"/collections/{world.data_collection_id}/reprocess",
        data={k: str(v) for k, v in body.items()} | {"csrf_token": csrf},
    )
    assert form.status_code == 422 and message in form.text


def test_reprocess_refuses_a_body_that_is_not_json(clients: Any, world: Any) -> None:
    client, csrf = clients["member"]
    response = client.post(
        f"/api/collections/{world.data_collection_id}/reprocess",
        content=b"{not json",
        headers={"X-CSRF-Token": csrf, "content-type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["detail"]


def test_events_push_the_summary_and_jobs(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    response = client.get(
        f"/api/collections/{world.data_collection_id}/events", params={"limit": 1}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    event, data = response.text.strip().split("\n", 1)
    assert event == "event: update"
    state = json.loads(data.removeprefix("data: "))
    assert state["summary"]["movies"] == 12
    assert {j["recipe"] for j in state["jobs"]} >= {"motioncorr", "ctf", "ice"}


def test_staff_failures_show_the_message(clients: Any, world: Any) -> None:
    failures = clients["staff"][0].get("/api/staff/failures").json()
    failed = next(f for f in failures if f["auto_proc_program_id"] == world.failed_program_id)
    assert failed["message"] == "gain file missing" and failed["visit"] == world.visit
    assert failed["messages"] == [["ERROR", "no gain reference found"]]
    scopes = clients["staff"][0].get("/api/staff/microscopes").json()
    assert {"m02", "m03"} <= set(scopes)


def test_openapi_describes_the_api_and_plotly_comes_from_its_package(clients: Any) -> None:
    client, _ = clients["anonymous"]
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/collections/{data_collection_id}/series" in paths
    assert "/api/collections/{data_collection_id}/reprocess" in paths
    assert client.get("/vendor/plotly.min.js").content == plotly_js().read_bytes()
