"""The particles STAR file RELION is given, and RELION's per-iteration files turned into
cryolive's: particles back in the input's order, rlnImageName relative to the new folder."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from cryolive.adapters._relion_star import check_particle_tables
from cryolive.io.particle_files import ParticleStarTables, write_particles_3d

OPTICS_COLUMNS: tuple[str, ...] = ("rlnImagePixelSize", "rlnImageSize", "rlnVoltage")
OPTICS_COLUMNS += ("rlnSphericalAberration", "rlnAmplitudeContrast")
PARTICLE_COLUMNS = ("rlnImageName", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle")
ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
ORIGINS = ("rlnOriginXAngst", "rlnOriginYAngst")


@dataclass(frozen=True)
class InputStar:
    """The input particles (its own tables), their pixel (Å) and box (px)."""

    tables: ParticleStarTables
    pixel_size_a: float
    box_px: int

    @property
    def count(self) -> int:
        return len(self.tables.particles)


def read_input(star_path: Path) -> InputStar:
    """Check that ``star_path`` is a RELION 3.1 particles file RELION can refine with CTF
    (one pixel size and box).

    Raises
    ------
    ValueError
        Missing or unreadable file, no data_optics/data_particles loop, a required column
        missing, no particles, optics groups that differ in pixel or box, an image named twice.
    """
    if not star_path.is_file():
        raise ValueError(f"star_path: {star_path} does not exist")
    try:
        blocks = starfile.read(star_path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on garbage
        raise ValueError(f"star_path: {star_path} is not a readable STAR file: {exc}") from exc
    optics, particles = blocks.get("optics"), blocks.get("particles")
    if not isinstance(optics, pd.DataFrame) or not isinstance(particles, pd.DataFrame):
        raise ValueError(
            f"star_path: {star_path} needs data_optics and data_particles loops (RELION 3.1)"
        )
    pixel, box = check_particle_tables(
        star_path, optics, particles,
        optics_columns=OPTICS_COLUMNS, particle_columns=PARTICLE_COLUMNS,
    )  # fmt: skip
    return InputStar(
        tables=ParticleStarTables(star_path, optics, particles),
        pixel_size_a=pixel,
        box_px=box,
    )


def last_iteration(root: Path) -> int:
    """The highest NNN of ``ROOT_itNNN_data.star`` (-1 when there is none)."""
    pattern = re.compile(re.escape(root.name) + r"_it(\d{3})_data\.star$")
    found = [int(m.group(1)) for p in root.parent.iterdir() if (m := pattern.match(p.name))]
    return max(found, default=-1)


def read_block(path: Path, block: str) -> pd.DataFrame:
    """One loop of a STAR file RELION wrote; :class:`ValueError` naming what is missing."""
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on garbage
        raise ValueError(f"{path}: not a readable STAR file ({exc})") from exc
    table = blocks.get(block)
    if table is None:
        raise ValueError(f"{path}: no data_{block} block")
    return table if isinstance(table, pd.DataFrame) else pd.DataFrame([table])


def in_input_order(data_star: Path, given: InputStar, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of RELION's data STAR file, one row per input particle in input order."""
    table = read_block(data_star, "particles")
    missing = [c for c in ("rlnImageName", *columns) if c not in table.columns]
    if missing:
        raise ValueError(f"{data_star}: data_particles lacks {', '.join(missing)}")
    position = {str(n): i for i, n in enumerate(given.tables.particles["rlnImageName"])}
    try:
        order = np.array([position[str(n)] for n in table["rlnImageName"]], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"{data_star}: image {exc} is not in the input") from exc
    if len(order) != given.count or len(np.unique(order)) != len(order):
        raise ValueError(f"{data_star}: particles do not match the input one to one")
    out = table[list(columns)].copy()
    out.index = order
    return out.sort_index()


def write_data(
    path: Path,
    given: InputStar,
    rows: pd.DataFrame,
    *,
    columns: Sequence[str] = (),
) -> Path:
    """``run_data.star`` at ``path``: the input's rows with RELION's angles and origins (and
    ``columns``) from ``rows`` (input order)."""
    origins = -rows[list(ORIGINS)].to_numpy(float) if all(c in rows for c in ORIGINS) else None
    write_particles_3d(
        path,
        given.tables,
        angles_deg=rows[list(ANGLES)].to_numpy(float),
        origins_a=origins,
        columns={c: rows[c].to_numpy() for c in columns},
    )
    return path
