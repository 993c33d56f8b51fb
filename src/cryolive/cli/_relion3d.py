"""``--engine cryolive|relion`` of the 3D commands: the choice checked, and the RELION
adapters' errors turned into the commands' exits (a missing program or a bad input: exit 2,
which the 3D services record as a failure of the input; RELION failing: exit 1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

ENGINES = ("cryolive", "relion")
ENGINE_HELP = "cryolive, or relion (RELION 3.1.3's programs, which must be on PATH)."
THREADS_HELP = "Threads of each RELION process (relion engine only)."


def check_engine(engine: str, threads: int) -> None:
    if engine not in ENGINES:
        raise typer.BadParameter(f"cryolive or relion, got {engine!r}", param_hint="--engine")
    if threads < 1:
        raise typer.BadParameter(f"must be at least 1, got {threads}", param_hint="--threads")


@contextmanager
def relion_errors(console: Console, what: str) -> Iterator[None]:
    """Run a RELION adapter: its bad input and a missing program as usage errors, its
    failures as exit 1 with RELION's log tail."""
    from cryolive.adapters.relion_refine3d import Relion3DError, RelionMissingError

    try:
        yield
    except RelionMissingError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engine") from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except Relion3DError as exc:
        console.print(f"[red]{what} failed[/red]: {exc}")
        raise typer.Exit(1) from exc
