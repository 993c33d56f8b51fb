"""``cryolive demo``: a small two-grid session simulated, processed live and checked, with no
server to install (SQLite and the embedded broker), then shown in the browser."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgramMessage,
    DataCollection,
    MotionCorrection,
    Movie,
    ParticleClassificationGroup,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from cryolive.check import CheckReport, check_visit
from cryolive.db.ledger import open_items
from cryolive.db.repo import classes, recon3d, visits
from cryolive.pipeline.runtime import VisitFolder, start_pipeline
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit

DEMO_USER, DEMO_PASSWORD = "demo", "cryolive-demo"
STAFF_USER, STAFF_PASSWORD = "staff", "cryolive-staff"
DEMO_BROKER = "memory://demo"  # embedded: `cryolive demo` hands it to the web application


# A demo grid holds a few hundred particles: classify from 100 on, 20 or more per class.
DEMO_2D: dict[str, object] = {
    "class2d_min_particles": 100,
    "class2d_particles_per_class": 20,
    "class2d_classes": 12,
    "class2d_iterations": 12,
}
CLASSES_WAIT_S = 120.0  # after the last movie, for the last 2D classification
RECON3D_WAIT_S = 900.0  # with live 3D asked for: for its first run (and refinement)


def demo_3d(first_particles: int) -> dict[str, object]:
    """Parameters that let a demo's few hundred particles reach live 3D: the first 3D run at
    ``first_particles`` selected 2D particles, a refinement of a class of 20 or more."""
    return {
        "class3d_first_particles": first_particles,
        "class3d_classes": 2,
        "refine3d_min_class_particles": 20,
        "refine3d_max_class_resolution_a": 40.0,
        "refine3d_min_angular_efficiency": 0.0,
    }


@dataclass(frozen=True)
class DemoPlan:
    out: Path
    visit: str = "bi23047-5"
    grids: int = 2
    movies_per_grid: int = 6
    detector: str = "1k"
    frames: int = 24
    rate_per_hour: float = 1800.0
    # live 3D from this many selected 2D particles (None: the facility default, 50 000, which
    # a demo's few hundred particles never reach)
    class3d_particles: int | None = None


def _counts(session: Session) -> dict[str, int]:
    def count(model: type) -> int:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)

    return {
        "movies": count(Movie),
        "motion corrected": count(MotionCorrection),
        "CTF fitted": count(CTF),
        "2D classifications": count(ParticleClassificationGroup),
        "failed": count(AutoProcProgramMessage),
        "open": open_items(session),
    }


def _accounts(session: Session, *, visit: str) -> None:
    session_id = visits.ensure_visit(session, visit=visit, microscope="m02")
    demo = visits.ensure_person(session, login=DEMO_USER, given_name="Demo", family_name="User")
    visits.add_member(session, session_id=session_id, person_id=demo, role="Principal Investigator")
    visits.set_password(session, person_id=demo, password=DEMO_PASSWORD)
    staff = visits.ensure_person(
        session, login=STAFF_USER, given_name="Facility", family_name="Staff"
    )
    visits.make_staff(session, person_id=staff)
    visits.set_password(session, person_id=staff, password=STAFF_PASSWORD)


def _wait_for_classes(sessions: sessionmaker[Session], *, grids: int, console: Console) -> None:
    """Wait (a while) until every grid's particles have been classified in 2D once."""
    deadline = time.time() + CLASSES_WAIT_S
    with console.status("2D classification of the last particles"):
        while time.time() < deadline:
            with sessions() as session:
                ids = session.scalars(sa.select(DataCollection.dataCollectionId)).all()
                done = sum(1 for dc in ids if classes.gallery(session, data_collection_id=dc))
            if done >= grids:
                return
            time.sleep(1.0)
    console.print("[yellow]2D classification still running; the web page will show it[/]")


def _wait_for_3d(sessions: sessionmaker[Session], *, console: Console) -> None:
    """Wait (a while) until some collection has a 3D refinement, or at least a 3D run."""
    deadline = time.time() + RECON3D_WAIT_S
    found: list[recon3d.Results3D] = []
    with console.status("live 3D: initial model, 3D classes, refinement"):
        while time.time() < deadline:
            with sessions() as session:
                ids = session.scalars(sa.select(DataCollection.dataCollectionId)).all()
                found = [recon3d.results_3d(session, data_collection_id=dc) for dc in ids]
            if any(r.refinements for r in found):
                return
            time.sleep(2.0)
    ran = any(r.runs for r in found)
    console.print(f"[yellow]no 3D refinement yet{'; 3D classes shown' if ran else ''}[/]")


def run_demo(plan: DemoPlan, *, console: Console) -> CheckReport:
    """Simulate the session into ``plan.out/visit`` while processing it; return the check."""
    logging.basicConfig(level=logging.WARNING)
    visit_dir = (plan.out / "visit").resolve()
    database_url = f"sqlite:///{(plan.out / 'cryolive.sqlite').resolve()}"
    pipeline = start_pipeline(
        database_url=database_url,
        broker_url=DEMO_BROKER,
        visits=[VisitFolder(visit_dir, plan.visit, "m02")],
        poll_s=1.0,
        settle_s=2.0,
        parameters=DEMO_2D
        if plan.class3d_particles is None
        else DEMO_2D | demo_3d(plan.class3d_particles),
    )
    with pipeline.sessions.begin() as session:
        _accounts(session, visit=plan.visit)
    config = VisitConfig(
        visit=plan.visit,
        n_grids=plan.grids,
        movies_per_grid=plan.movies_per_grid,
        detector=plan.detector,
        # the easy preset: the demo shows the pipeline at work, the engine tests measure it
        movie=MovieConfig.preset("easy", n_frames=plan.frames),
        rate_per_hour=plan.rate_per_hour,
    )
    total = plan.grids * plan.movies_per_grid
    simulated = threading.Thread(target=simulate_visit, args=(config, visit_dir), daemon=True)
    simulated.start()
    columns = (
        TextColumn("{task.description:>17}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            tasks = {
                name: progress.add_task(name, total=total)
                for name in ("movies", "motion corrected", "CTF fitted")
            }
            while True:
                with pipeline.sessions() as session:
                    counts = _counts(session)
                for name, task in tasks.items():
                    progress.update(task, completed=counts[name])
                if not simulated.is_alive() and counts["movies"] >= total and counts["open"] == 0:
                    break
                time.sleep(1.0)
        _wait_for_classes(pipeline.sessions, grids=plan.grids, console=console)
        if plan.class3d_particles is not None:
            _wait_for_3d(pipeline.sessions, console=console)
        with pipeline.sessions() as session:
            return check_visit(session, visit_dir=visit_dir)
    finally:
        pipeline.stop()
