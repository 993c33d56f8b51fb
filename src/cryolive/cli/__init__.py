"""The ``cryolive`` command line (typer + rich).

Each domain keeps its commands in its own module here and registers them in :func:`build_app`.
Settings are built once, in the callback, from ``--config`` and the environment, and reach each
command through the typer context (:func:`settings_of`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryolive.config import Settings, load_settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the top-level callback built for this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = load_settings()
    return root.obj


def _callback(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="TOML settings file (keys as in cryolive.config.Settings)."
    ),
) -> None:
    """Live processing of cryo-EM data, recorded in an ISPyB-compatible database."""
    try:
        ctx.obj = load_settings(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc


def build_app() -> typer.Typer:
    from cryolive.cli import (
        admin,
        bfactor,
        class2d,
        class3d,
        ctf,
        curate,
        db,
        epu,
        messaging,
        motioncorr,
        picking,
        pipeline,
        postprocess,
        refine3d,
        report,
        simulate,
        web,
    )

    app = typer.Typer(
        no_args_is_help=True,
        callback=_callback,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    # One line per command group; each module owns its commands.
    app.add_typer(db.app, name="db")
    app.add_typer(admin.app, name="admin")
    app.add_typer(epu.app, name="epu")
    app.command("worker")(messaging.worker)
    app.add_typer(messaging.dlq_app, name="dlq")
    app.add_typer(messaging.recipe_app, name="recipe")
    app.command()(simulate.simulate)
    app.command("simulate-particles")(simulate.simulate_particles)
    app.command("simulate-particles3d")(simulate.simulate_particles3d)
    app.command()(motioncorr.motioncorr)
    app.command("ctf")(ctf.ctf_command)
    app.command("ice")(ctf.ice_command)
    app.command("pick")(picking.pick_command)
    app.command("extract")(picking.extract_command)
    app.command("class2d")(class2d.class2d_command)
    app.command("postprocess")(postprocess.postprocess_command)
    app.command("bfactor")(bfactor.bfactor_command)
    app.command("refine3d")(refine3d.refine3d_command)
    app.command("initial-model")(class3d.initial_model_command)
    app.command("class3d")(class3d.class3d_command)
    app.command()(pipeline.run)
    app.command()(pipeline.check)
    app.command()(pipeline.reprocess)
    app.command()(pipeline.stop)
    app.command()(pipeline.demo)
    app.add_typer(pipeline.export_app, name="export")
    app.command()(curate.curate)
    app.command("web")(web.serve)
    app.command("report")(report.report)
    return app


def main() -> None:
    build_app()()
