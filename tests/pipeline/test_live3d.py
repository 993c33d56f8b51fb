"""A simulated session goes live through 2D into 3D: the selected 2D particles trigger an
initial model and a 3D classification, the best class is refined and postprocessed, the
writer records the 3D rows, and the web panel's data is there.

Run twice: with stand-ins for the 3D commands (tests/fake3d.py: the file contracts, so the
wiring — recipe, messages, services, writer — is tested quickly and exactly) and with the real
``cryolive initial-model``/``class3d``/``refine3d``/``postprocess`` run as local jobs.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import DataCollection

from cryolive.config import WatcherSettings
from cryolive.db.repo import classes, recon3d
from cryolive.pipeline.runtime import VisitFolder, start_pipeline
from cryolive.services import class3d as class3d_service
from cryolive.services import refine3d as refine3d_service

SMALL = {
    "class2d_min_particles": 20,
    "class2d_particles_per_class": 10,
    "class2d_classes": 3,
    "class2d_iterations": 4,
    "class3d_first_particles": 10,
    "class3d_classes": 2,
    "refine3d_min_class_particles": 10,
    "refine3d_min_angular_efficiency": 0.0,
    "refine3d_max_class_resolution_a": 200.0,
}


def _fake3d() -> object:
    path = Path(__file__).resolve().parents[1] / "fake3d.py"
    spec = importlib.util.spec_from_file_location("cryolive_tests_fake3d", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _wait_for_3d(sessions: Callable[[], object], timeout_s: float) -> tuple[int, recon3d.Results3D]:
    deadline = time.time() + timeout_s
    while True:
        with sessions() as session:  # type: ignore[attr-defined]
            for dc in session.scalars(sa.select(DataCollection.dataCollectionId)).all():
                found = recon3d.results_3d(session, data_collection_id=dc)
                if found.runs and found.refinements:
                    return int(dc), found
        if time.time() > deadline:
            raise AssertionError(f"no 3D run with a refinement in {timeout_s} s")
        time.sleep(0.5)


@pytest.mark.parametrize("commands", ["stand-ins", "engines"])
def test_a_simulated_session_goes_through_2d_into_3d(
    commands: str,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_db: str,
    two_grid_visit: Path,
    visit_copy: Callable[[Path], Path],
) -> None:
    if commands == "stand-ins":
        fake = _fake3d()
        monkeypatch.setattr(class3d_service, "run_step", fake.run_step)  # type: ignore[attr-defined]
        monkeypatch.setattr(refine3d_service, "run_step", fake.run_step)  # type: ignore[attr-defined]
    visit = visit_copy(two_grid_visit)
    pipeline = start_pipeline(
        database_url=sqlite_db,
        broker_url=f"memory://live3d-{commands}",
        visits=[VisitFolder(visit, "bi23047-5", "m02")],
        poll_s=0.3,
        settle_s=1.0,
        watcher=WatcherSettings(incomplete_wait_s=2.0),
        parameters=SMALL,
    )
    try:
        dc, found = _wait_for_3d(
            pipeline.sessions, timeout_s=300.0 if commands == "engines" else 180.0
        )
        with pipeline.sessions() as session:
            selected = classes.selected_particle_count(session, data_collection_id=dc)
    finally:
        pipeline.stop()
    run = found.runs[0]
    assert run.run_number == 1 and 10 <= run.particles <= selected
    assert run.initial_model_particles == run.particles
    # class3d takes 20 particles per class: a small run asks for fewer classes
    wanted = max(1, min(2, run.particles // 20))
    assert len(run.classes) == wanted and sum(c.selected for c in run.classes) == 1
    refinement = found.refinements[0]
    assert refinement.resolution_a is not None and refinement.points
    project = visit / "processed"
    assert list(project.glob("*/Class3D/job*/run_001/particles.star"))
    assert list(project.glob("*/Refine3D/job*/run_001_class*/PostProcess/postprocess.mrc"))
