"""The watcher on EPU 3.9's own files (a real K3 session's grid square, ``epu-example``), with
small stand-in movies beside its two acquisitions: both are registered once, with the defocus,
dose, frames, stage position and time their XML records; the survey images, JPEGs and XMLs of
the square and its holes are not movies."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import tifffile
from ispyb.sqlalchemy import DataCollection, Movie
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.models import WorkItem
from cryolive.messaging import open_transport
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.requests import request_run, start_requested
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher

# In CI the shared folder lies beside the repository, as /work/shared does beside a worktree.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SQUARE = SHARED / "data" / "epu-example" / "Images-Disc1" / "GridSquare_8999138"
# What the two acquisitions' XML say (see the example's README): defocus (Å, underfocus),
# dose (e/Å²), stage X (µm), time (UTC)
EXPECTED = {
    "FoilHole_9015883_Data_9017347_6_20250108_154915": (
        27000.0, 14.41, -97.152, datetime(2025, 1, 8, 15, 49, 18, 115828)
    ),
    "FoilHole_9015883_Data_9017354_6_20250108_154918": (
        27000.0, 14.56, -97.153, datetime(2025, 1, 8, 15, 49, 21, 104970)
    ),
}  # fmt: skip


@pytest.fixture
def square(need_service: Callable[[str, str], None]) -> Path:
    if not SQUARE.is_dir():
        need_service("epu-example", f"{SQUARE} is missing")
    return SQUARE


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return session_factory(engine)


def test_a_real_epu_square_registers_its_two_acquisitions(
    square: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    visit = tmp_path / "cm40593-1"
    copied = visit / "raw" / "Images-Disc1" / square.name
    shutil.copytree(square, copied)  # into the test's own folder, never the repository
    frames = np.random.default_rng(0).poisson(1.0, (50, 16, 16)).astype(np.uint8)
    for stem in EXPECTED:  # NumberOffractions is 50
        tifffile.imwrite(copied / "Data" / f"{stem}_fractions.tiff", frames)
    watcher = Watcher(
        visit_dir=visit,
        visit="cm40593-1",
        sessions=sessions,
        transport=open_transport(f"memory://epu-{uuid.uuid4().hex[:8]}"),
        recipe=load_recipe(recipe_path("spa-preprocess")),
    )
    watcher.scan_once(0.0)
    assert watcher.scan_once(1.0).registered == 2
    assert watcher.scan_once(2.0).registered == 0
    with sessions() as session:
        rows = session.execute(sa.select(Movie)).scalars().all()
        dc = session.execute(sa.select(DataCollection)).scalars().one()
        work = [json.loads(m) for m in session.scalars(sa.select(WorkItem.message))]
    assert sorted(Path(r.movieFullPath).name for r in rows) == sorted(
        f"{stem}_fractions.tiff" for stem in EXPECTED
    )
    for row in rows:
        defocus, dose, stage_x, when = EXPECTED[
            Path(row.movieFullPath).name[: -len("_fractions.tiff")]
        ]
        assert row.nominalDefocus == pytest.approx(defocus)
        assert row.fluence == pytest.approx(dose, abs=0.01)
        assert row.numberOfFrames == 50
        assert row.positionX == pytest.approx(stage_x, abs=1e-3)
        assert row.createdTimeStamp == when
    assert float(dc.pixelSizeOnImage) == pytest.approx(1.0559, abs=1e-4)
    assert float(dc.voltage) == pytest.approx(300.0)
    assert float(dc.slitGapHorizontal) == pytest.approx(20.0)
    doses = sorted(w["parameters"]["acquisition"]["dose_per_frame_e_per_a2"] for w in work)
    assert doses == pytest.approx([14.41 / 50, 14.56 / 50], abs=1e-3)


class _Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, queue: str, body: bytes, **_: object) -> None:
        self.sent.append((queue, body))


def test_a_reprocess_request_uses_each_movies_own_dose_unless_the_user_gives_one(
    square: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    visit = tmp_path / "cm40593-1"
    copied = visit / "raw" / "Images-Disc1" / square.name
    shutil.copytree(square, copied)
    frames = np.random.default_rng(0).poisson(1.0, (50, 16, 16)).astype(np.uint8)
    for stem in EXPECTED:
        tifffile.imwrite(copied / "Data" / f"{stem}_fractions.tiff", frames)
    recipe = load_recipe(recipe_path("spa-preprocess"))
    watcher = Watcher(
        visit_dir=visit,
        visit="cm40593-1",
        sessions=sessions,
        transport=open_transport(f"memory://epu-{uuid.uuid4().hex[:8]}"),
        recipe=recipe,
    )
    watcher.scan_once(0.0)
    assert watcher.scan_once(1.0).registered == 2
    with sessions.begin() as session:
        dc_id = session.execute(sa.select(DataCollection.dataCollectionId)).scalar_one()
        request_run(
            session, data_collection_id=dc_id, recipe=recipe.name, parameters={}, requested_by="u"
        )
    transport = _Recording()
    assert len(start_requested(sessions, transport, recipe=recipe)) == 1  # type: ignore[arg-type]
    doses = sorted(
        json.loads(body)["parameters"]["acquisition"]["dose_per_frame_e_per_a2"]
        for _, body in transport.sent
    )
    assert doses == pytest.approx([14.41 / 50, 14.56 / 50], abs=1e-3)  # each its own

    with sessions.begin() as session:
        request_run(
            session,
            data_collection_id=dc_id,
            recipe=recipe.name,
            parameters={"dose_per_frame_e_per_a2": 0.5},
            requested_by="u",
        )
    transport = _Recording()
    assert len(start_requested(sessions, transport, recipe=recipe)) == 1  # type: ignore[arg-type]
    doses = [
        json.loads(body)["parameters"]["acquisition"]["dose_per_frame_e_per_a2"]
        for _, body in transport.sent
    ]
    assert doses == [0.5, 0.5]  # what the user asked for wins
