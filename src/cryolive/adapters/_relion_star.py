"""What every RELION adapter checks of the particles STAR file it hands to RELION."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def check_particle_tables(
    star_path: Path,
    optics: pd.DataFrame,
    particles: pd.DataFrame,
    *,
    optics_columns: Sequence[str],
    particle_columns: Sequence[str],
) -> tuple[float, int]:
    """The one pixel size (Å) and box (px) of a RELION 3.1 particles file's tables.

    Raises
    ------
    ValueError
        A required column missing, no particles, optics groups that differ in pixel size or
        box, an image named twice.
    """
    for table, columns, name in (
        (optics, optics_columns, "data_optics"),
        (particles, particle_columns, "data_particles"),
    ):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"star_path: {name} of {star_path} lacks {', '.join(missing)}")
    if len(particles) == 0:
        raise ValueError(f"star_path: {star_path} holds no particles")
    sizes = optics["rlnImagePixelSize"].to_numpy(float)
    boxes = optics["rlnImageSize"].to_numpy(int)
    if np.ptp(sizes) > 1e-6 or np.ptp(boxes) > 0:
        raise ValueError(f"star_path: optics groups of {star_path} differ in pixel size or box")
    if particles["rlnImageName"].astype(str).duplicated().any():
        raise ValueError(f"star_path: {star_path} names some image twice (rlnImageName)")
    return float(sizes[0]), int(boxes[0])
