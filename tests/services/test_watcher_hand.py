"""A data collection registered by hand is the one the watcher then fills: same row (same
natural key), and its hand-entered optics for movies that come without metadata."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import DataCollection, Movie, ProcessingJob, ProcessingJobParameter
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.repo import manual, visits
from cryolive.messaging import open_transport
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher

VISIT = "bi20001-1"


def _movie(path: Path, frames: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).poisson(1.0, (frames, 32, 32)).astype(np.float32)
    mrcfile.write(path, data)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return session_factory(engine)


def _watch(sessions: sessionmaker[Session], visit_dir: Path) -> int:
    watcher = Watcher(
        visit_dir=visit_dir,
        visit=VISIT,
        sessions=sessions,
        transport=open_transport(f"memory://watch-{uuid.uuid4().hex[:8]}"),
        recipe=load_recipe(recipe_path("spa-preprocess")),
        settle_s=1.0,
        metadata_wait_s=4.0,
    )
    watcher.scan_once(0.0)  # sizes seen
    assert watcher.scan_once(2.0).registered == 0  # still waiting for its metadata
    return watcher.scan_once(5.0).registered  # stood still past settle_s, no metadata for 5 s


def _parameters(session: Session, dc: int) -> dict[str, object]:
    rows = session.execute(
        sa.select(ProcessingJobParameter.parameterKey, ProcessingJobParameter.parameterValue)
        .join(
            ProcessingJob, ProcessingJob.processingJobId == ProcessingJobParameter.processingJobId
        )
        .where(ProcessingJob.dataCollectionId == dc)
    )
    return {k: json.loads(v) for k, v in rows if k not in ("raw_dir", "project_dir")}


@pytest.mark.parametrize("frames", [None, 8])
def test_watcher_fills_the_hand_registered_collection(
    sessions: sessionmaker[Session], tmp_path: Path, frames: int | None
) -> None:
    visit_dir = tmp_path / VISIT
    _movie(visit_dir / "raw" / "Frames" / "m1.mrc", frames=6)
    optics = manual.HandOptics(
        software="SerialEM",
        extension="mrc",
        pixel_size_a=1.07,
        dose_per_frame_e_per_a2=1.5,
        voltage_kv=200.0,
        frames=frames,
        registered_by="alice",
    )
    with sessions.begin() as session:
        sid = visits.ensure_visit(session, visit=VISIT)
        _, dc = manual.register_by_hand(
            session, session_id=sid, raw_dir=str(visit_dir / "raw"), optics=optics
        )
        assert manual.hand_optics(session, session_id=sid, raw_dir=str(visit_dir / "raw")) == optics

    assert _watch(sessions, visit_dir) == 1
    with sessions() as session:
        assert session.scalars(sa.select(DataCollection.dataCollectionId)).all() == [dc]
        assert session.scalars(sa.select(Movie.dataCollectionId)).all() == [dc]
        used = _parameters(session, dc)
    n = frames or 6  # entered, or read from the movie's header
    assert used["pixel_size_a"] == pytest.approx(1.07)
    assert used["voltage_kv"] == pytest.approx(200.0)
    assert used["frames"] == n
    assert used["dose_per_frame_e_per_a2"] == pytest.approx(1.5)
    assert used["total_dose_e_per_a2"] == pytest.approx(1.5 * n)


def test_without_hand_optics_a_movie_without_metadata_waits(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    visit_dir = tmp_path / VISIT
    _movie(visit_dir / "raw" / "Frames" / "m1.mrc", frames=6)
    assert _watch(sessions, visit_dir) == 0
    with sessions() as session:
        assert session.scalars(sa.select(DataCollection.dataCollectionId)).all() == []


def test_a_folder_registers_once(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    optics = manual.HandOptics("EPU", "tiff", 0.83, 1.0, 300.0, None, "alice")
    with sessions.begin() as session:
        sid = visits.ensure_visit(session, visit=VISIT)
        manual.register_by_hand(session, session_id=sid, raw_dir="/data/v/raw", optics=optics)
        with pytest.raises(manual.AlreadyRegistered, match="already a data collection"):
            manual.register_by_hand(session, session_id=sid, raw_dir="/data/v/raw/", optics=optics)
        with pytest.raises(ValueError, match="raw_dir: must be an absolute path"):
            manual.register_by_hand(session, session_id=sid, raw_dir="raw2", optics=optics)
        bad = manual.HandOptics("EPU", "tiff", -1.0, 1.0, 300.0, None, "alice")
        with pytest.raises(ValueError, match="optics"):
            manual.register_by_hand(session, session_id=sid, raw_dir="/data/v/raw3", optics=bad)
