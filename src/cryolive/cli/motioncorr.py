"""``cryolive motioncorr``: motion-correct movies by hand, writing what the service writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    import numpy as np

from cryolive.params import Acquisition, MotionParameters

# The pipeline's defaults (cryolive.params), so a stage by hand does what a run does.
_MOTION = MotionParameters()
_ACQUISITION = Acquisition()
# Whole-frame alignment B-factor (Å²) when --bfactor is not given: each engine's own
# (cryolive's filters in exp(-B k²/2); 500 measured best at 1 e/px, docs/motioncorr.md).
_DEFAULT_BFACTOR = {"cryolive": _MOTION.bfactor_a2, "relion": 150.0}


def _patches(text: str) -> tuple[int, int] | None:
    if text.lower() in ("0", "none", "off"):
        return None
    across_x, sep, across_y = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError(text)
        return int(across_x), int(across_y)
    except ValueError as exc:
        raise typer.BadParameter(
            f"expected e.g. 5x5 or 7x5, got {text!r}", param_hint="--patches"
        ) from exc


def motioncorr(
    ctx: typer.Context,
    movies: list[Path] = typer.Argument(..., help="Movies (TIFF, MRC, EER)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    pixel_size: float = typer.Option(
        ..., "--pixel-size", help="Pixel size, Å (after EER upsampling)."
    ),
    dose_per_frame: float = typer.Option(
        ..., "--dose-per-frame", help="e/Å² per frame (EER: per fraction)."
    ),
    voltage: float = typer.Option(_ACQUISITION.voltage_kv, "--voltage", help="kV: 300 or 200."),
    pre_exposure: float = typer.Option(0.0, "--pre-exposure", help="e/Å² before the first frame."),
    gain: Path | None = typer.Option(None, "--gain", help="Gain reference (MRC or TIFF)."),
    gain_orientation: str = typer.Option(
        "auto",
        "--gain-orientation",
        help="auto (found from the first movies), or ROTATE,FLIP such as 90,x "
        "(rotate 0/90/180/270 counter-clockwise, then flip none/x/y).",
    ),
    patches: str = typer.Option(
        f"{_MOTION.patches_x}x{_MOTION.patches_y}",
        "--patches",
        help="Patches across x by y (7x5 for K3), or none.",
    ),
    bfactor: float | None = typer.Option(
        None,
        "--bfactor",
        help="B-factor for whole-frame alignment, Å² (default: 500 for cryolive, 150 for relion).",
    ),
    local_bfactor: float = typer.Option(150.0, "--local-bfactor", help="B-factor for patches, Å²."),
    frames: int | None = typer.Option(None, "--frames", help="Frames the movie must have."),
    eer_grouping: int | None = typer.Option(
        None, "--eer-grouping", help="EER frames per fraction."
    ),
    eer_upsampling: int = typer.Option(1, "--eer-upsampling", help="EER: 1 (4k) or 2 (8k)."),
    threads: int | None = typer.Option(None, "--threads", help="FFT threads (default: all CPUs)."),
    engine: str = typer.Option(
        "cryolive", "--engine", help="cryolive, or relion (RELION's own, relion_run_motioncorr)."
    ),
) -> None:
    """Motion-correct movies: dose-weighted and plain sums, drift, motion, images for the web.

    A movie that cannot be read or corrected is reported and skipped; the exit code is 1 if
    any failed.
    """
    from cryolive.cli._motioncorr import orient_gain, parse_orientation, process_movie
    from cryolive.engines.motion import GainTransform
    from cryolive.io import GainReadError, MovieReadError
    from cryolive.io.gain import read_gain

    # (no setting is used here: building them would only cost start-up time)
    if engine not in ("cryolive", "relion"):
        raise typer.BadParameter(f"cryolive or relion, got {engine!r}", param_hint="--engine")
    failures: tuple[type[Exception], ...] = (MovieReadError, ValueError)
    if engine == "relion":  # RELION's adapter (starfile, pandas) only when it runs
        from cryolive.adapters.relion_motioncorr import RelionMotionError

        failures = (*failures, RelionMotionError)
    console = Console(stderr=True)
    grid = _patches(patches)
    gain_matched = None
    read_already: dict[Path, np.ndarray] = {}  # the first movie, read to orient the gain
    if gain is not None:
        try:
            stored = read_gain(gain)
        except GainReadError as exc:
            console.print(f"[red]gain reference unusable[/red]: {exc}")
            raise typer.Exit(2) from exc
        if gain_orientation == "auto":
            found = orient_gain(
                movies, stored, eer_group=eer_grouping, eer_upsampling=eer_upsampling,
                keep=read_already if engine == "cryolive" else None,
            )  # fmt: skip
            if found is None:
                console.print("[red]no readable movie to find the gain orientation from[/red]")
                raise typer.Exit(2)
            console.print(found.describe())
            transform: GainTransform = found.transform
        else:
            try:
                transform = parse_orientation(gain_orientation)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--gain-orientation") from exc
        gain_matched = transform.apply(stored)
    failed = 0
    for movie in movies:
        start = time.perf_counter()
        try:
            files = process_movie(
                movie, out, gain=gain_matched, pixel_size_a=pixel_size,
                dose_per_frame_e_per_a2=dose_per_frame, voltage_kv=voltage,
                pre_exposure_e_per_a2=pre_exposure, patches=grid,
                bfactor_a2=bfactor if bfactor is not None else _DEFAULT_BFACTOR[engine],
                local_bfactor_a2=local_bfactor, expected_frames=frames,
                eer_group=eer_grouping, eer_upsampling=eer_upsampling, workers=threads,
                engine=engine, frames=read_already.pop(movie, None),
            )  # fmt: skip
        except failures as exc:
            failed += 1
            console.print(f"[red]FAILED[/red] {movie}: {exc}")
            continue
        console.print(f"{movie} -> {files.micrograph} ({time.perf_counter() - start:.1f} s)")
    if failed:
        console.print(f"{failed} of {len(movies)} movies failed")
        raise typer.Exit(1)
