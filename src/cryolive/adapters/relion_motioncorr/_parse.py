"""Read what ``relion_run_motioncorr`` wrote: per-movie shifts and the motion summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import starfile
from numpy.typing import NDArray


def read_shifts_px(movie_star: Path, *, rows_flipped: bool) -> NDArray[np.float64]:
    """Whole-frame shifts from a per-movie STAR file, in cryolive's convention.

    RELION stores the shift that brings each frame back, in the frame as RELION read it;
    cryolive gives the displacement of each frame's content (dy, dx) in the rows and columns
    of the file. x: ``dx = -ShiftX``. y depends on how RELION read the file: MRC and MRCS
    frames keep their row order (``dy = -ShiftY``), TIFF frames are read bottom row first
    (``rows_flipped``; ``dy = +ShiftY``). Checked against planted drift on all three formats
    (tests/adapters/relion_motioncorr).

    Returns
    -------
    (n, 2) float64
        (dy, dx) px relative to frame 1.
    """
    blocks = starfile.read(movie_star, always_dict=True)
    if "global_shift" not in blocks:
        raise ValueError(f"{movie_star}: no data_global_shift block")
    table = blocks["global_shift"]
    y_sign = 1.0 if rows_flipped else -1.0
    shifts = np.stack(
        [
            y_sign * table["rlnMicrographShiftY"].to_numpy(float),
            -table["rlnMicrographShiftX"].to_numpy(float),
        ],
        axis=1,
    )
    return np.asarray(shifts - shifts[0], dtype=np.float64)


def read_motion_a(corrected_star: Path) -> tuple[float, float, float]:
    """(total, early, late) accumulated motion (Å) of the first micrograph in the summary."""
    blocks = starfile.read(corrected_star, always_dict=True)
    table = blocks["micrographs"]
    row = table.iloc[0]
    return (
        float(row["rlnAccumMotionTotal"]),
        float(row["rlnAccumMotionEarly"]),
        float(row["rlnAccumMotionLate"]),
    )


def movies_star(movie: Path, *, pixel_size_a: float, voltage_kv: float) -> str:
    """A RELION 3.1 movies STAR file with one optics group and one movie."""
    return (
        "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n"
        "_rlnMicrographOriginalPixelSize #3\n_rlnVoltage #4\n_rlnSphericalAberration #5\n"
        f"_rlnAmplitudeContrast #6\nopticsGroup1 1 {pixel_size_a:.6f} {voltage_kv:.1f} 2.7 0.1\n"
        "\n# version 30001\n\ndata_movies\n\nloop_\n_rlnMicrographMovieName #1\n"
        f"_rlnOpticsGroup #2\n{movie.name} 1\n"
    )
