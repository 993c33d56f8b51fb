"""The optics and particle tables of RELION 3.1 particles.star files, joined, as they are
(every column kept), for files that carry the particles on: 2D classes' ``run_data.star``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import starfile

from cryolive.io.particle_files._read_star import ParticleStarError, _require, _tables


@dataclass(frozen=True)
class ParticleTables:
    """A data_optics table and a data_particles table (one row per particle, all columns)."""

    optics: pd.DataFrame
    particles: pd.DataFrame


def _rebased(name: str, star_dir: Path, relative_to: Path) -> str:
    """``INDEX@STACK`` with STACK (relative to ``star_dir`` unless absolute) made relative to
    ``relative_to``."""
    number, _, stack = name.partition("@")
    path = Path(stack) if Path(stack).is_absolute() else star_dir / stack
    return f"{number}@{os.path.relpath(path.resolve(), relative_to.resolve())}"


def read_particle_tables(paths: Iterable[Path], *, relative_to: Path) -> ParticleTables:
    """Join the tables of several particles.star files, stack paths made relative to a folder.

    Parameters
    ----------
    paths : iterable of Path
        RELION 3.1 particles.star files (data_optics and data_particles with rlnImageName and
        rlnOpticsGroup), joined in the order given.
    relative_to : Path
        The folder the joined table will be written to: each rlnImageName's stack is
        rewritten relative to it, so that RELION, run there, finds the stacks.

    Returns
    -------
    ParticleTables
        Optics groups of all files (the first file's row for a group number seen twice; the
        particle reader checks that they agree on pixel size and optics) and every particle
        row, all columns kept (columns missing from some files are empty there).

    Raises
    ------
    ParticleStarError
        (a ValueError) a file that does not exist, is not a STAR file, or lacks a table or
        rlnImageName / rlnOpticsGroup.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("paths: need at least one particles.star")
    optics_tables, particle_tables = [], []
    for path in files:
        optics, particles = _tables(path)
        _require(path, optics, ("rlnOpticsGroup",), "optics")
        _require(path, particles, ("rlnImageName", "rlnOpticsGroup"), "particles")
        if len(particles) == 0:
            raise ParticleStarError(path, "data_particles has no rows")
        particles = particles.copy()
        particles["rlnImageName"] = [
            _rebased(str(name), path.parent, relative_to) for name in particles["rlnImageName"]
        ]
        optics_tables.append(optics)
        particle_tables.append(particles)
    optics = pd.concat(optics_tables, ignore_index=True).drop_duplicates(
        subset="rlnOpticsGroup", keep="first"
    )
    return ParticleTables(
        optics=optics.reset_index(drop=True),
        particles=pd.concat(particle_tables, ignore_index=True),
    )


def write_particle_tables(path: Path, tables: ParticleTables) -> Path:
    """Write ``tables`` as a RELION 3.1 particles.star (data_optics, data_particles)."""
    starfile.write({"optics": tables.optics, "particles": tables.particles}, path, overwrite=True)
    return path
