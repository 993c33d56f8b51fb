"""Read RELION 3.1 ``particles.star`` files (optics + particles tables) into a ParticleSet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.engines.class2d import ParticleSet
from cryolive.errors import BadInputError

OPTICS_COLUMNS = (
    "rlnOpticsGroup",
    "rlnImagePixelSize",
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
)
PARTICLE_COLUMNS = ("rlnImageName", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle")
_OPTICS_FIELDS = ("pixel_size_a", "voltage_kv", "cs_mm", "amplitude_contrast")


class ParticleStarError(BadInputError):
    """A particles.star (or a stack it names) that cannot be read; says which and why."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class _Read:
    images: NDArray[np.float32]
    defocus: NDArray[np.float64]  # (n, 3): U, V, angle
    optics: tuple[float, float, float, float]  # as _OPTICS_FIELDS


def _tables(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not path.is_file():
        raise ParticleStarError(path, "no such file")
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises whatever its parser meets
        raise ParticleStarError(path, f"not a STAR file ({exc})") from exc
    if not blocks:
        raise ParticleStarError(path, "not a STAR file (no data_ block)")
    tables = {name: t for name, t in blocks.items() if isinstance(t, pd.DataFrame)}
    for name in ("optics", "particles"):
        if name not in tables:
            raise ParticleStarError(
                path, f"no data_{name} table (RELION 3.1 particles.star needs optics and particles)"
            )
    return tables["optics"], tables["particles"]


def _require(path: Path, table: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ParticleStarError(path, f"data_{name} lacks column(s) {', '.join(missing)}")


def _optics(path: Path, optics: pd.DataFrame, particles: pd.DataFrame) -> tuple[float, ...]:
    _require(path, optics, OPTICS_COLUMNS, "optics")
    groups = optics.set_index("rlnOpticsGroup")
    used = set(particles["rlnOpticsGroup"]) if "rlnOpticsGroup" in particles else set(groups.index)
    unknown = used - set(groups.index)
    if unknown:
        raise ParticleStarError(
            path, f"particles name optics group(s) {sorted(unknown)} not in data_optics"
        )
    rows = groups.loc[sorted(used), list(OPTICS_COLUMNS[1:])].to_numpy(dtype=np.float64)
    if rows.shape[0] == 0:
        raise ParticleStarError(path, "data_optics is empty")
    for column, values in zip(OPTICS_COLUMNS[1:], rows.T, strict=True):
        if not np.allclose(values, values[0], rtol=1e-4):
            raise ParticleStarError(
                path, f"mixed {column} across optics groups: {sorted(set(values))}"
            )
    return tuple(float(v) for v in rows[0])


def _images(path: Path, names: pd.Series) -> NDArray[np.float32]:
    """Read the boxes named ``000001@stack.mrcs``, opening each stack once (memory-mapped)."""
    index = np.empty(len(names), dtype=np.int64)
    stacks: list[str] = []
    for k, name in enumerate(names.astype(str)):
        number, sep, stack = name.partition("@")
        if not sep or not number.strip().isdigit() or not stack:
            raise ParticleStarError(path, f"rlnImageName {name!r} is not INDEX@STACK")
        index[k] = int(number) - 1
        stacks.append(stack)
    stack_of = np.asarray(stacks)
    images: NDArray[np.float32] | None = None
    for stack in dict.fromkeys(stacks):
        file = Path(stack) if Path(stack).is_absolute() else path.parent / stack
        if not file.is_file():
            raise ParticleStarError(path, f"stack {file} does not exist")
        rows = np.flatnonzero(stack_of == stack)
        try:
            with mrcfile.mmap(file, mode="r", permissive=True) as mrc:
                data = mrc.data
                if data is None:
                    raise ParticleStarError(path, f"stack {file} holds no data")
                data = data[None] if data.ndim == 2 else data
                if data.ndim != 3 or data.shape[1] != data.shape[2]:
                    raise ParticleStarError(path, f"stack {file} is not square boxes: {data.shape}")
                wanted = index[rows]
                bad = (wanted < 0) | (wanted >= data.shape[0])
                if bad.any():
                    raise ParticleStarError(
                        path,
                        f"image {int(wanted[bad][0]) + 1} out of range: {file} holds "
                        f"{data.shape[0]} images",
                    )
                if images is None:
                    images = np.empty((len(names), *data.shape[1:]), dtype=np.float32)
                elif images.shape[1:] != data.shape[1:]:
                    raise ParticleStarError(
                        path,
                        f"mixed box sizes: {file} has {data.shape[1]}, others {images.shape[1]}",
                    )
                images[rows] = data[wanted]
        except (OSError, EOFError) as exc:  # ValueError from mrcfile: a damaged header
            raise ParticleStarError(path, f"cannot read stack {file}: {exc}") from exc
    assert images is not None
    return images


def _read(path: Path) -> _Read:
    optics, particles = _tables(path)
    _require(path, particles, PARTICLE_COLUMNS, "particles")
    if len(particles) == 0:
        raise ParticleStarError(path, "data_particles has no rows")
    settings = _optics(path, optics, particles)
    defocus = particles[list(PARTICLE_COLUMNS[1:])].to_numpy(dtype=np.float64)
    return _Read(_images(path, particles["rlnImageName"]), defocus, settings)  # type: ignore[arg-type]


def read_particle_stars(paths: Iterable[Path]) -> ParticleSet:
    """Join the particles of several RELION 3.1 particles.star files (one per micrograph).

    All must share box size, pixel size and optics.

    Raises
    ------
    ParticleStarError
        (a ValueError) naming the file and what is wrong: not a STAR file, no optics or
        particles table, a missing column, a missing stack, an image index out of range,
        mixed box sizes or pixel sizes (or other optics).
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("paths: need at least one particles.star")
    parts = [_read(p) for p in files]
    first = parts[0]
    for path, part in zip(files[1:], parts[1:], strict=True):
        if part.images.shape[1:] != first.images.shape[1:]:
            raise ParticleStarError(
                path,
                f"mixed box sizes: {part.images.shape[1]} here, "
                f"{first.images.shape[1]} in {files[0]}",
            )
        for field, ours, theirs in zip(_OPTICS_FIELDS, part.optics, first.optics, strict=True):
            if not np.isclose(ours, theirs, rtol=1e-4):
                raise ParticleStarError(path, f"mixed {field}: {ours} here, {theirs} in {files[0]}")
    defocus = np.concatenate([p.defocus for p in parts])
    pixel_size_a, voltage_kv, cs_mm, amplitude_contrast = first.optics
    return ParticleSet(
        images=parts[0].images if len(parts) == 1 else np.concatenate([p.images for p in parts]),
        pixel_size_a=pixel_size_a,
        defocus_u_a=defocus[:, 0],
        defocus_v_a=defocus[:, 1],
        astigmatism_angle_deg=defocus[:, 2],
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
    )


def read_particles_star(path: Path) -> ParticleSet:
    """Read a RELION 3.1 particles.star and the boxes it names (stacks relative to its folder).

    Takes rlnImageName (``000001@stack.mrcs``, 1-based), rlnDefocusU/V/Angle per particle and
    rlnImagePixelSize, rlnVoltage, rlnSphericalAberration, rlnAmplitudeContrast from its optics
    group. Errors as :func:`read_particle_stars`.
    """
    return read_particle_stars([path])
