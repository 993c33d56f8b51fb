"""The ``cryolive`` command line (typer + rich).

Each domain keeps its commands in its own module here and lists them, one line each, in
:data:`COMMANDS`. A module is imported only when one of its commands runs (or shows its own
``--help``): ``cryolive --help`` and ``cryolive ctf …`` do not pay for numpy, SQLAlchemy,
FastAPI or the settings they do not use (docs/architecture.md, "Command-line start-up").

Settings are built when a command first asks for them (:func:`settings_of`), from ``--config``
and the environment, once per invocation.

To add a command: write it in its module, then add one :class:`Lazy` line to :data:`COMMANDS`
with its name, ``"module:attribute"`` (a function, or a ``typer.Typer`` for a group) and the
start of its help (the listing shows it without importing the module; a test checks that it is
the start of the command's own help).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer import _click  # typer's own click, for the types of the overrides

    from cryolive.config import Settings


@dataclass(frozen=True)
class Lazy:
    """A command (or group of commands) of ``cryolive``, imported when it is used."""

    name: str
    target: str  # "module:attribute" under cryolive.cli: a function, or a typer.Typer group
    help: str  # the start of the command's help, shown in `cryolive --help`


# In the order `cryolive --help` lists them.
COMMANDS: tuple[Lazy, ...] = (
    Lazy("db", "db:app", "Build, inspect and secure the database."),
    Lazy("admin", "admin:app", "Proposals, visits, people and their rights."),
    Lazy("epu", "epu:app", "Look into EPU and SerialEM folders."),
    Lazy("worker", "messaging:worker", "Run one service's consumers until SIGTERM"),
    Lazy("dlq", "messaging:dlq_app", "Dead letters: list, show, reinject, purge."),
    Lazy("recipe", "messaging:recipe_app", "Recipes: cryolive's own and Zocalo's."),
    Lazy("simulate", "simulate:simulate", "Write a simulated data collection"),
    Lazy("simulate-particles", "simulate:simulate_particles", "Write simulated particle boxes"),
    Lazy("simulate-particles3d", "simulate:simulate_particles3d", "Write particles of a known map"),
    Lazy("motioncorr", "motioncorr:motioncorr", "Motion-correct movies"),
    Lazy("ctf", "ctf:ctf_command", "Fit the CTF of each micrograph"),
    Lazy("ice", "ctf:ice_command", "Relative ice thickness ln(I0/I) of each micrograph"),
    Lazy("pick", "picking:pick_command", "Pick particles"),
    Lazy("extract", "picking:extract_command", "Extract particles"),
    Lazy("class2d", "class2d:class2d_command", "Classify particles in 2D"),
    Lazy("postprocess", "postprocess:postprocess_command", "Mask, corrected FSC, resolution"),
    Lazy("bfactor", "bfactor:bfactor_command", "Refine nested random subsets"),
    Lazy(
        "refine3d",
        "refine3d:refine3d_command",
        "Refine angles and origins (point group C1, Cn or Dn)",
    ),
    Lazy("initial-model", "class3d:initial_model_command", "De novo initial model(s)"),
    Lazy("class3d", "class3d:class3d_command", "3D classification from one reference"),
    Lazy("run", "pipeline:run", "Process a visit live"),
    Lazy("check", "pipeline:check", "The daily check"),
    Lazy("reprocess", "pipeline:reprocess", "Ask the running pipeline to process a data"),
    Lazy("stop", "pipeline:stop", "Stop a processing run"),
    Lazy("demo", "pipeline:demo", "Simulate a two-grid session, process it live on SQLite"),
    Lazy("export", "pipeline:export_app", "Export results for other programs."),
    Lazy("curate", "curate:curate", "Show or change a data collection's curation"),
    Lazy("web", "web:serve", "Serve the web application"),
    Lazy("report", "report:report", "Write a visit's session report (PDF)"),
)
_BY_NAME = {lazy.name: lazy for lazy in COMMANDS}
# One markup mode for every command, as one typer.Typer would give them.
_MARKUP: Any = typer.Typer().rich_markup_mode


def load_command(lazy: Lazy) -> _click.Command:
    """Import ``lazy``'s module and build its click command (a group for a typer.Typer)."""
    module, attribute = lazy.target.split(":")
    target = getattr(importlib.import_module(f"cryolive.cli.{module}"), attribute)
    holder = typer.Typer(rich_markup_mode=_MARKUP)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=lazy.name)
    else:
        holder.command(lazy.name)(target)
    return typer.main.get_group(holder).commands[lazy.name]


class LazyGroup(TyperGroup):
    """The top-level group: lists :data:`COMMANDS` from their lines and imports a command's
    module only when that command is looked up to run."""

    _listing = False

    def list_commands(self, ctx: _click.Context) -> list[str]:
        own = [name for name in self.commands if name not in _BY_NAME]
        return [*own, *_BY_NAME]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name in self.commands or cmd_name not in _BY_NAME:
            return self.commands.get(cmd_name)
        lazy = _BY_NAME[cmd_name]
        if self._listing:  # a stand-in that only shows its help line
            return TyperCommand(lazy.name, help=lazy.help)
        self.commands[cmd_name] = load_command(lazy)
        return self.commands[cmd_name]

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        if not args or args[0] in self.commands or args[0] in _BY_NAME:
            return super().resolve_command(ctx, args)
        # An unknown name: stand-ins for the commands not imported yet, so that typer's
        # "Did you mean …?" knows them too.
        stand_ins = [name for name in _BY_NAME if name not in self.commands]
        self.commands.update({name: TyperCommand(name) for name in stand_ins})
        try:
            return super().resolve_command(ctx, args)
        finally:
            for name in stand_ins:
                del self.commands[name]


def settings_of(ctx: typer.Context) -> Settings:
    """The settings for this invocation (``--config`` and the environment), built on first use."""
    from cryolive.config import Settings, load_settings

    root = ctx.find_root()
    if isinstance(root.obj, Settings):
        return root.obj
    config = root.obj if isinstance(root.obj, Path) else None
    try:
        settings = load_settings(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc
    root.obj = settings
    return settings


def _callback(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", help="TOML settings file (keys as in cryolive.config.Settings)."
    ),
) -> None:
    """Live processing of cryo-EM data, recorded in an ISPyB-compatible database."""
    # Settings are built by the first command that needs them (settings_of); a missing file is
    # refused here, for every command, as load_settings would.
    if config is not None and not config.is_file():
        raise typer.BadParameter(f"config_file: no such file: {config}", param_hint="--config")
    ctx.obj = config


def build_app() -> typer.Typer:
    """The ``cryolive`` application; its commands are imported when used (:data:`COMMANDS`)."""
    return typer.Typer(
        cls=LazyGroup,
        no_args_is_help=True,
        callback=_callback,
        pretty_exceptions_enable=False,
        add_completion=False,
    )


def main() -> None:
    build_app()()
