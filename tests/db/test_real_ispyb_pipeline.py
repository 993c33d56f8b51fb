"""A small simulated visit processed live into a facility's ISPyB (the published schema on
MariaDB), then read through the web API: the whole of cryolive on a database it did not build.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from ispyb.sqlalchemy import DataCollection
from sqlalchemy.orm import Session

from cryolive.config import Settings, WebSettings
from cryolive.db import make_engine
from cryolive.db.ledger import open_items
from cryolive.db.repo import classes, series, visits
from cryolive.pipeline.runtime import VisitFolder, start_pipeline
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit
from cryolive.web import create_app

pytestmark = pytest.mark.slow

# Three 1k micrographs hold few particles: 2D classification starts at 20 here.
SMALL_2D = {
    "class2d_min_particles": 20,
    "class2d_particles_per_class": 10,
    "class2d_classes": 3,
    "class2d_iterations": 4,
}
SECRET = "tests-only: real-ispyb 4fQ9zLm2Xc7Vb1Nk8Rt3Wy6Hp5Dg0Js"


def _collections(sessions: object, session_id: int) -> list[int]:
    with sessions() as session:  # type: ignore[operator]
        return [
            int(i)
            for i in session.scalars(
                sa.select(DataCollection.dataCollectionId).where(
                    session_id == DataCollection.SESSIONID
                )
            )
        ]


def _wait_for_results(sessions: object, session_id: int, timeout_s: float) -> int:
    """The visit's data collection, once its 2D classes are in and no work is open."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for dc_id in _collections(sessions, session_id):
            with sessions() as session:  # type: ignore[operator]
                summary = series.summary(session, data_collection_id=dc_id)
                if (
                    summary["ctf_estimated"] == 3
                    and open_items(session) == 0
                    and classes.gallery(session, data_collection_id=dc_id)
                ):
                    return dc_id
        time.sleep(0.5)
    raise AssertionError(f"no CTF for 3 movies and 2D classes in {timeout_s} s")


def _log_in(client: TestClient, login: str, password: str) -> None:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post(
        "/login",
        data={"login": login, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_a_visit_is_processed_into_a_facility_ispyb_and_read_on_the_web(
    real_ispyb_upgraded_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    visit_name = f"cm{int(tag, 16) % 10**6}-1"
    root = tmp_path / "data"
    visit_dir = root / visit_name
    simulate_visit(
        VisitConfig(
            detector="1k",
            movie=MovieConfig.preset("easy", n_frames=8),
            n_grids=1,
            movies_per_grid=3,
        ),
        visit_dir,
    )
    engine = make_engine(real_ispyb_upgraded_url)
    with Session(engine) as session, session.begin():  # the facility's user office
        session_id = visits.ensure_visit(session, visit=visit_name, microscope="m02")
        staffer = visits.ensure_person(session, login=f"staff{tag}")
        visits.set_password(session, person_id=staffer, password="a-staff-password")
        visits.make_staff(session, person_id=staffer)

    pipeline = start_pipeline(
        database_url=real_ispyb_upgraded_url,
        broker_url=f"memory://real-ispyb-{tag}",
        visits=[VisitFolder(visit_dir, visit_name, "m02")],
        poll_s=0.3,
        settle_s=1.0,
        parameters=SMALL_2D,
    )
    try:
        dc_id = _wait_for_results(pipeline.sessions, session_id, timeout_s=240)
    finally:
        pipeline.stop()
    assert _collections(pipeline.sessions, session_id) == [dc_id]  # one raw folder, one row

    settings = Settings(
        database_url=real_ispyb_upgraded_url,
        processing_root=root,
        data_root=tmp_path,
        web=WebSettings(secret=SECRET, visit_folder=f"{root}/{{visit}}"),  # type: ignore[arg-type]
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        _log_in(client, f"staff{tag}", "a-staff-password")
        detail = client.get(f"/api/collections/{dc_id}")
        assert detail.status_code == 200, detail.text
        summary = detail.json()["summary"]
        assert summary["movies"] == 3 and summary["ctf_estimated"] == 3
        assert summary["mean_defocus_a"] and summary["mean_defocus_a"] > 0
        gallery = client.get(f"/api/collections/{dc_id}/classes")
        assert gallery.status_code == 200 and gallery.json(), gallery.text
        microscopes = client.get("/api/staff/microscopes").json()
        assert visit_name in {v["name"] for v in microscopes["m02"]}
        assert not {"i03", "i02-2"} & set(microscopes)  # the sample data's MX visits
    engine.dispose()
