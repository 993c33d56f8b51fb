"""RELION 3.1 particles.star for 3D work: read images with CTF, angles, origins and half sets;
write them back with new angles, origins and columns (every other column kept)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.engines.recon3d import ParticleStack3D
from cryolive.io.particle_files._read_star import (
    PARTICLE_COLUMNS,
    ParticleStarError,
    _images,
    _optics,
    _require,
    _tables,
)

ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
ORIGIN_COLUMNS = ("rlnOriginXAngst", "rlnOriginYAngst")


@dataclass(frozen=True)
class ParticleStarTables:
    """The file's own tables, kept so that a writer changes only what it means to."""

    path: Path
    optics: pd.DataFrame
    particles: pd.DataFrame


def read_particles_3d(path: Path) -> tuple[ParticleStack3D, ParticleStarTables]:
    """Read a RELION 3.1 particles.star (one optics setting) for 3D work.

    Angles, origins (Å; ``rlnOriginX/Y`` in pixels of RELION 3.0 are converted) and
    ``rlnRandomSubset`` are taken when present. Raises :class:`ParticleStarError` (a
    BadInputError) naming the file and the problem.

    Origins: RELION's ``rlnOriginX/YAngst`` is the translation that moves the particle onto the
    box centre, so the image is its projection moved by *minus* it; ``ParticleStack3D.origins_a``
    is where the projection is moved to (``origins_a = -rlnOriginX/YAngst``), and
    :func:`write_particles_3d` turns the sign back (checked with ``relion_reconstruct``).
    """
    path = Path(path)
    optics, particles = _tables(path)
    _require(path, particles, PARTICLE_COLUMNS, "particles")
    if len(particles) == 0:
        raise ParticleStarError(path, "data_particles has no rows")
    pixel, voltage, cs, amp = _optics(path, optics, particles)
    try:
        defocus = particles[list(PARTICLE_COLUMNS[1:])].to_numpy(dtype=np.float64)
        angles = (
            particles[list(ANGLE_COLUMNS)].to_numpy(dtype=np.float64)
            if all(c in particles for c in ANGLE_COLUMNS)
            else None
        )
        if all(c in particles for c in ORIGIN_COLUMNS):
            origins = -particles[list(ORIGIN_COLUMNS)].to_numpy(dtype=np.float64)
        elif all(c in particles for c in ("rlnOriginX", "rlnOriginY")):
            origins = -particles[["rlnOriginX", "rlnOriginY"]].to_numpy(dtype=np.float64) * pixel
        else:
            origins = None
        subset = (
            particles["rlnRandomSubset"].to_numpy(dtype=np.int64)
            if "rlnRandomSubset" in particles
            else None
        )
    except (ValueError, TypeError) as exc:
        raise ParticleStarError(path, f"a number column holds something else ({exc})") from exc
    for name, values in (("defocus", defocus), ("angles", angles), ("origins", origins)):
        if values is not None and not np.isfinite(values).all():
            raise ParticleStarError(path, f"{name} columns hold non-finite values")
    if subset is not None and not np.isin(subset, (1, 2)).all():
        raise ParticleStarError(path, "rlnRandomSubset must be 1 or 2")
    images = _images(path, particles["rlnImageName"])
    stack = ParticleStack3D(
        images=images,
        pixel_size_a=pixel,
        defocus=defocus,
        voltage_kv=voltage,
        cs_mm=cs,
        amplitude_contrast=amp,
        angles_deg=angles,
        origins_a=origins,
        subset=subset,
    )
    return stack, ParticleStarTables(path, optics, particles)


def write_particles_3d(
    path: Path,
    tables: ParticleStarTables,
    *,
    angles_deg: NDArray[np.floating] | None = None,
    origins_a: NDArray[np.floating] | None = None,
    columns: Mapping[str, NDArray[np.generic] | list[object]] | None = None,
    rows: NDArray[np.integer] | None = None,
) -> int:
    """Write ``tables`` to ``path`` (RELION 3.1) with new angles, origins and ``columns``.

    ``rows`` picks (and orders) a subset of the particles; the arrays given are for those rows.
    rlnImageName stays valid: a relative stack name is rewritten relative to the new folder.
    Returns the number of particles written.
    """
    path = Path(path)
    particles = tables.particles.copy()
    if rows is not None:
        particles = particles.iloc[np.asarray(rows, dtype=np.int64)].reset_index(drop=True)
    if angles_deg is not None:
        a = np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3)
        for k, name in enumerate(ANGLE_COLUMNS):
            particles[name] = np.round(a[:, k], 4)
    if origins_a is not None:
        o = np.asarray(origins_a, dtype=np.float64).reshape(-1, 2)
        for k, name in enumerate(ORIGIN_COLUMNS):
            particles[name] = np.round(-o[:, k], 4)
        particles = particles.drop(columns=["rlnOriginX", "rlnOriginY"], errors="ignore")
    for name, values in (columns or {}).items():
        particles[name] = list(values) if isinstance(values, list) else np.asarray(values)
    particles["rlnImageName"] = [
        _relocate(str(n), tables.path.parent, path.parent) for n in particles["rlnImageName"]
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    starfile.write({"optics": tables.optics, "particles": particles}, path, overwrite=True)
    return len(particles)


def _relocate(name: str, old: Path, new: Path) -> str:
    number, _, stack = name.partition("@")
    p = Path(stack)
    if p.is_absolute():
        return name
    target = (old / p).resolve()
    try:
        rel = Path(*([".."] * 0)) / target.relative_to(new.resolve())
    except ValueError:
        import os

        rel = Path(os.path.relpath(target, new.resolve()))
    return f"{number}@{rel}"
