"""The work behind ``cryolive motioncorr``: read a movie, correct it, write its files."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from cryolive.engines.motion import (
    Flip,
    GainOrientation,
    GainTransform,
    correct_motion,
    detect_gain_orientation,
)
from cryolive.io import MovieReadError
from cryolive.io.movies import read_movie
from cryolive.io.outputs.motioncorr import MotionFiles, write_motion_outputs

ORIENTATION_MOVIES = 3


def parse_orientation(text: str) -> GainTransform:
    """``"90,x"`` -> GainTransform(90, "x"); raises ValueError naming the problem."""
    rotate, _, flip = text.partition(",")
    try:
        return GainTransform(int(rotate), cast(Flip, flip or "none"))
    except ValueError as exc:
        raise ValueError(f"gain orientation {text!r}: {exc}") from exc


def orient_gain(
    movies: list[Path],
    stored: np.ndarray,
    *,
    eer_group: int | None,
    eer_upsampling: int,
    keep: dict[Path, np.ndarray] | None = None,
) -> GainOrientation | None:
    """The gain orientation found from the raw sums of up to the first 3 readable movies.

    ``keep``: where to leave the frames of the first movie, when it is readable, so that its
    correction need not read (and decode) it again."""
    total = None
    used = 0
    for movie in movies:
        try:
            frames = read_movie(movie, eer_group=eer_group, eer_upsampling=eer_upsampling)
        except (MovieReadError, ValueError):
            continue
        if keep is not None and movie == movies[0]:
            keep[movie] = frames
        summed = frames.sum(axis=0, dtype=np.float64)
        if total is not None and summed.shape != total.shape:
            continue
        total = summed if total is None else total + summed
        used += 1
        if used == ORIENTATION_MOVIES:
            break
    return None if total is None else detect_gain_orientation(total, stored)


def process_movie(
    movie: Path,
    out_dir: Path,
    *,
    gain: np.ndarray | None,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    voltage_kv: float,
    pre_exposure_e_per_a2: float,
    patches: tuple[int, int] | None,
    bfactor_a2: float,
    local_bfactor_a2: float,
    expected_frames: int | None,
    eer_group: int | None,
    eer_upsampling: int,
    workers: int | None,
    engine: str = "cryolive",
    frames: np.ndarray | None = None,
) -> MotionFiles:
    """Read, correct and write one movie with ``engine`` (``cryolive`` or ``relion``).

    ``frames``: the movie as read already (by :func:`orient_gain`); read again when it has
    not ``expected_frames`` frames, so that the read's own error says so.

    Raises MovieReadError, UnusableMovieError or RelionMotionError.
    """
    stem = movie.name.split(".")[0]
    settings: dict[str, object] = {
        "movie": str(movie), "engine": engine, "patches_requested": patches,
        "bfactor_a2": bfactor_a2, "local_bfactor_a2": local_bfactor_a2, "voltage_kv": voltage_kv,
    }  # fmt: skip
    if engine == "relion":
        # imported here: the adapter pulls starfile and pandas, which cryolive's engine needs not
        from cryolive.adapters.relion_motioncorr import run_relion_motioncorr

        found = run_relion_motioncorr(
            movie, out_dir / "relion" / stem, pixel_size_a=pixel_size_a,
            dose_per_frame_e_per_a2=dose_per_frame_e_per_a2, voltage_kv=voltage_kv,
            pre_exposure_e_per_a2=pre_exposure_e_per_a2, gain=gain,
            patches=patches or (1, 1), bfactor_a2=bfactor_a2, threads=workers or 1,
        )  # fmt: skip
        result = found.as_motion_result(
            pixel_size_a=pixel_size_a, dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
            pre_exposure_e_per_a2=pre_exposure_e_per_a2,
        )  # fmt: skip
        return write_motion_outputs(result, out_dir, stem, extra=settings)
    if frames is None or expected_frames not in (None, frames.shape[0]):
        frames = read_movie(
            movie, expected_frames=expected_frames, eer_group=eer_group,
            eer_upsampling=eer_upsampling,
        )  # fmt: skip
    result = correct_motion(
        frames, pixel_size_a=pixel_size_a, dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
        voltage_kv=voltage_kv, pre_exposure_e_per_a2=pre_exposure_e_per_a2, gain=gain,
        patches=patches, bfactor_a2=bfactor_a2, local_bfactor_a2=local_bfactor_a2,
        workers=workers,
    )  # fmt: skip
    return write_motion_outputs(result, out_dir, stem, extra=settings)
