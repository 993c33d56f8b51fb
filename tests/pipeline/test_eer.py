"""EER movies: the watcher chooses the frame grouping from the dose (issue 9); the choice itself
is tested in tests/engines/motion/test_eer_grouping.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, ProcessingJobParameter

from cryolive.check import check_visit
from cryolive.db import make_engine, session_factory, upgrade
from cryolive.io.movies import movie_frame_count
from cryolive.messaging.connect import open_transport
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import VisitFolder, recipe_path, start_pipeline
from cryolive.pipeline.watcher import Watcher
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit


@pytest.fixture(scope="module")
def eer_visit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 1k EER movie: 8 e/Å² in 160 EER frames (0.05 each), written once per module."""
    visit = tmp_path_factory.mktemp("sim") / "eer"
    movie = MovieConfig.preset("easy", n_frames=8, eer_frames_per_fraction=20, dose_e_per_a2=8.0)
    simulate_visit(VisitConfig(detector="1k", format="eer", movie=movie, movies_per_grid=1), visit)
    return visit


def _parameters(session: object) -> dict[str, object]:
    rows = session.execute(  # type: ignore[attr-defined]
        sa.select(ProcessingJobParameter.parameterKey, ProcessingJobParameter.parameterValue)
    ).all()
    return {key: json.loads(value) for key, value in rows if key not in ("raw_dir", "project_dir")}


def test_a_watched_eer_visit_is_grouped_from_its_dose_and_processed(
    sqlite_db: str, eer_visit: Path, visit_copy: Callable[[Path], Path], done: Callable
) -> None:
    visit = visit_copy(eer_visit)
    movies = sorted(visit.rglob("*_EER.eer"))
    assert len(movies) == 1 and movie_frame_count(movies[0]) == 160
    pipeline = start_pipeline(
        database_url=sqlite_db,
        broker_url="memory://eer",
        visits=[VisitFolder(visit, "bi23047-5", "m02")],
        poll_s=0.3,
        settle_s=1.0,
    )
    try:
        done(pipeline.sessions, movies=1)
        with pipeline.sessions() as session:
            parameters = _parameters(session)
            motion = session.scalars(sa.select(MotionCorrection)).all()
            n_ctf = len(session.scalars(sa.select(CTF)).all())
            report = check_visit(session, visit_dir=visit)
    finally:
        pipeline.stop()
    # 8 e/Å² over 160 EER frames: groups of 16 (10 and 20 also divide 160; 16 gives 0.8
    # e/Å²), 10 fractions
    assert parameters["eer_grouping"] == 16
    assert parameters["dose_per_frame_e_per_a2"] == pytest.approx(0.8)
    assert "frames" not in parameters  # follows from the grouping
    assert len(motion) == 1 and n_ctf == 1
    assert motion[0].lastFrame == 10
    assert not report.missing and not report.unexpected_failures
    assert max(report.defocus_error_pct) < 1.0


def test_a_grouping_the_user_set_is_kept(sqlite_db: str, eer_visit: Path) -> None:
    engine = make_engine(sqlite_db)
    upgrade(engine)
    sessions = session_factory(engine)
    transport = open_transport("memory://eer-user")
    watcher = Watcher(
        visit_dir=eer_visit,
        visit="bi23047-5",
        sessions=sessions,
        transport=transport,
        recipe=load_recipe(recipe_path("spa-preprocess")),
        defaults={"eer_grouping": 20},
    )
    watcher.scan_once(0.0)
    report = watcher.scan_once(1.0)
    assert report.registered == 1  # registered, not processed: no worker listens
    with sessions() as session:
        parameters = _parameters(session)
    assert parameters["eer_grouping"] == 20
    assert parameters["dose_per_frame_e_per_a2"] == pytest.approx(1.0)  # 8 e/Å² in 8
