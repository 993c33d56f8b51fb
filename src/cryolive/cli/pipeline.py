"""``cryolive run``, ``check``, ``reprocess`` and ``stop``: the live pipeline."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cryolive.check import check_visit
from cryolive.cli import settings_of
from cryolive.cli._db import engine_of, transaction
from cryolive.db import session_factory
from cryolive.db.ledger import work_health
from cryolive.pipeline.requests import request_run, stop_run
from cryolive.pipeline.runtime import VisitFolder, start_pipeline

console = Console()


def run(
    ctx: typer.Context,
    visit_dir: Path = typer.Argument(..., help="The visit's folder (raw, raw2 … inside)."),
    visit: str = typer.Option(..., help="The visit's name, e.g. bi23047-5."),
    microscope: str = typer.Option("", help="Microscope name (ISPyB beamLineName)."),
    services: str = typer.Option(
        "all", help="Services to run here: all, none, or a comma-separated list."
    ),
    concurrency: int = typer.Option(1, min=1, help="Consumers per service."),
    poll: float = typer.Option(5.0, min=0.1, help="Seconds between scans of the visit."),
    settle: float = typer.Option(
        10.0,
        min=0.0,
        help="Seconds a movie without metadata must stand still to count as complete.",
    ),
) -> None:
    """Process a visit live: watch it, run the services, reconcile, until SIGTERM/Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_of(ctx)
    chosen = None if services == "all" else [s for s in services.split(",") if s and s != "none"]
    pipeline = start_pipeline(
        database_url=settings.database,
        broker_url=settings.broker_url,
        visits=[VisitFolder(visit_dir.resolve(), visit, microscope)],
        services=chosen,
        concurrency=concurrency,
        poll_s=poll,
        settle_s=settle,
        watcher=settings.watcher,
        prefix=settings.broker_prefix,
        dead_letter_journal=settings.dead_letter_journal,
        atlas_roots=tuple(settings.atlas_roots),
        alerts=settings.alerts,
        public_url=settings.web.public_url,
        beamlines=settings.web.staff_beamlines,
        curation=settings.curation,
        jobs=settings.jobs,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"processing {visit} in {visit_dir} (Ctrl-C or SIGTERM to stop)")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        pipeline.stop()


def check(
    ctx: typer.Context,
    visit_dir: Path | None = typer.Argument(
        None,
        help="A simulated visit's folder (truth.json inside); leave out to check only "
        "that work flows.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
    loop_after: int = typer.Option(
        3, min=1, help="Work dispatched more often than this is looping."
    ),
    stuck_after_s: float = typer.Option(
        1800.0, min=1.0, help="Open work this old, with nothing closed meanwhile, is stuck."
    ),
) -> None:
    """The daily check: work that loops or is stuck, and a processed simulated visit against
    its ground truth. Exits 1 when anything is wrong."""
    if visit_dir is not None and not (visit_dir / "truth.json").is_file():
        raise typer.BadParameter(f"{visit_dir}: no truth.json (not a simulated visit)")
    engine = engine_of(ctx, writer=False)
    with session_factory(engine)() as session:
        health = work_health(
            session, now=time.time(), loop_after=loop_after, stuck_after_s=stuck_after_s
        )
        report = None if visit_dir is None else check_visit(session, visit_dir=visit_dir.resolve())
    engine.dispose()
    summary: dict[str, object] = {
        "open_work": health.open,
        "looping_work": len(health.looping),
        "stuck_work": len(health.stuck),
    }
    if report is not None:
        summary |= report.summary()
    table = Table(title=f"daily check of {visit_dir or 'the work ledger'}", show_header=False)
    for key, value in summary.items():
        table.add_row(
            key.replace("_", " "),
            "—" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value),
        )
    console.print(table)
    for key in health.looping[:20]:
        console.print(f"looping: {key}")
    for key in health.stuck[:20]:
        console.print(f"stuck: {key}")
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2))
    if not health.healthy:
        raise typer.Exit(code=1)
    if report is not None and (report.duplicates or report.missing or not report.faults_match):
        raise typer.Exit(code=1)
    if report is not None and report.registration is not None and not report.registration.ok:
        raise typer.Exit(code=1)  # a movie lost, doubled, mislabelled or on the wrong hole


def reprocess(
    ctx: typer.Context,
    data_collection: int = typer.Argument(..., help="DataCollection id."),
    param: list[str] = typer.Option([], "--param", help="KEY=VALUE (JSON value), repeatable."),
    recipe: str = typer.Option("spa-preprocess", help="Recipe to run."),
    by: str = typer.Option("staff", help="Who asks (recorded with the job)."),
) -> None:
    """Ask the running pipeline to process a data collection again with these parameters."""
    values = {}
    for item in param:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--param")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    with transaction(ctx) as session:
        job, program = request_run(
            session,
            data_collection_id=data_collection,
            recipe=recipe,
            parameters=values,
            requested_by=by,
        )
    console.print(f"requested: ProcessingJob {job}, AutoProcProgram {program}")


def stop(
    ctx: typer.Context,
    program: int = typer.Argument(..., help="AutoProcProgram id of the run to stop."),
    by: str = typer.Option("staff", help="Who stops it (recorded in the message)."),
) -> None:
    """Stop a processing run: no more results are recorded for it."""
    with transaction(ctx) as session:
        stop_run(session, auto_proc_program_id=program, stopped_by=by)
    console.print(f"stopped AutoProcProgram {program}")


def demo(
    out: Path = typer.Option(Path("demo-data"), help="Folder for the visit and the database."),
    grids: int = typer.Option(2, min=1, help="Grids, one raw folder each."),
    movies: int = typer.Option(6, min=1, help="Movies per grid."),
    detector: str = typer.Option("1k", help="Simulated detector: tiny, 1k, k3, falcon4i."),
    serve: bool = typer.Option(True, help="Serve the web application afterwards."),
    port: int = typer.Option(8000, help="Port of the web application."),
    class3d_particles: int | None = typer.Option(
        None,
        min=10,
        envvar="CRYOLIVE_DEMO_CLASS3D_PARTICLES",
        help="Live 3D from this many selected 2D particles (the default, 50 000, is more "
        "than a demo has); the demo then waits for its refinement.",
    ),
) -> None:
    """Simulate a two-grid session, process it live on SQLite, check it against the truth."""
    from cryolive.demo import (
        DEMO_BROKER,
        DEMO_PASSWORD,
        DEMO_USER,
        STAFF_PASSWORD,
        STAFF_USER,
        DemoPlan,
        run_demo,
    )

    plan = DemoPlan(
        out=out,
        grids=grids,
        movies_per_grid=movies,
        detector=detector,
        class3d_particles=class3d_particles,
    )
    report = run_demo(plan, console=console)
    table = Table(title="daily check of the demo visit", show_header=False)
    for key, value in report.summary().items():
        table.add_row(
            key.replace("_", " "),
            "—" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value),
        )
    console.print(table)
    console.print(_classes_line(f"sqlite:///{(out / 'cryolive.sqlite').resolve()}"))
    console.print(f"database: {out / 'cryolive.sqlite'}; visit: {out / 'visit'}")
    if serve:
        import uvicorn

        from cryolive.config import load_settings
        from cryolive.web import create_app

        settings = load_settings(
            database_url=f"sqlite:///{(out / 'cryolive.sqlite').resolve()}",
            data_root=out.resolve(),
            processing_root=(out / "visit" / "processed").resolve(),
            web={  # no secret: the one generated (once, mode 0600) in the demo's folder
                "port": port,
                "visit_folder": str((out / "visit").resolve()),
            },
        )
        console.print(
            f"web application: http://127.0.0.1:{port}/ — log in as {DEMO_USER} / "
            f"{DEMO_PASSWORD} (or {STAFF_USER} / {STAFF_PASSWORD}); Ctrl-C to stop"
        )
        from cryolive.messaging import open_transport

        # the embedded broker the demo's pipeline used lives on in this process: show it
        app = create_app(settings, transport=open_transport(DEMO_BROKER))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)


export_app = typer.Typer(no_args_is_help=True, help="Export results for other programs.")


@export_app.command("relion")
def export_relion(
    ctx: typer.Context,
    program: int = typer.Argument(..., help="AutoProcProgram id of the run to export."),
) -> None:
    """Write a run's micrographs and CTF fits as RELION 3.1 STAR files into its project."""
    from cryolive.export.relion import export_run

    with transaction(ctx) as session:
        done = export_run(session, program_id=program, curation_defaults=settings_of(ctx).curation)
    console.print(
        f"{done.micrographs} micrographs ({done.rejected} rejected by curation left out): "
        f"{done.motion_star}, {done.ctf_star}"
    )


def _classes_line(database_url: str) -> str:
    """One line on the 2D classification of the demo's particles."""
    import sqlalchemy as sa
    from ispyb.sqlalchemy import ParticleClassification, ParticleClassificationGroup

    from cryolive.db import make_engine
    from cryolive.db.models import ClassChoice
    from cryolive.db.repo.classes import effective_selected

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            groups = connection.scalar(
                sa.select(sa.func.count()).select_from(ParticleClassificationGroup)
            )
            classes, selected = connection.execute(  # a person's choice over the engine's
                sa.select(sa.func.count(), sa.func.sum(effective_selected()))
                .select_from(ParticleClassification)
                .outerjoin(
                    ClassChoice,
                    ClassChoice.particle_classification_id
                    == ParticleClassification.particleClassificationId,
                )
            ).one()
    finally:
        engine.dispose()
    return (
        f"2D classification: {groups} batch classifications, {classes} classes, "
        f"{int(selected or 0)} selected (see each collection's class gallery)"
    )
