"""Particle stacks (.mrcs) and a RELION 3.1 particles.star with an optics group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.engines.extract import Particles
from cryolive.engines.picking import MicrographCtf


@dataclass(frozen=True, kw_only=True)
class OpticsGroup:
    """What RELION 3.1 keeps per optics group (voltage kV, Cs mm, pixel sizes Å)."""

    name: str = "opticsGroup1"
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    micrograph_pixel_size_a: float
    image_pixel_size_a: float
    image_size_px: int


@dataclass(frozen=True, kw_only=True)
class MicrographParticles:
    """One micrograph's particles, their stack file and the micrograph's CTF.

    ``particle_ctf``, when given, holds one CTF per particle (simulated particles, or CTF
    refined per particle) and overrides ``ctf``.
    """

    micrograph_name: str
    stack_name: str  # as written in rlnImageName, relative to the STAR file's folder
    particles: Particles
    ctf: MicrographCtf | None
    particle_ctf: Sequence[MicrographCtf] | None = None

    def __post_init__(self) -> None:
        if self.particle_ctf is not None and len(self.particle_ctf) != len(self.particles):
            raise ValueError(
                f"particle_ctf: need one CTF per particle ({len(self.particles)}), "
                f"got {len(self.particle_ctf)}"
            )


def write_stack(path: Path, images: NDArray[np.float32], *, pixel_size_a: float) -> None:
    """Write (n, b, b) float32 ``images`` as an MRC stack (mode 2, ispg 0) with the pixel size."""
    if images.ndim != 3:
        raise ValueError(f"images: must be (n, b, b), got {images.shape}")
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(images, dtype=np.float32))
        mrc.set_image_stack()
        mrc.voxel_size = pixel_size_a


def write_particles_star(
    path: Path, micrographs: list[MicrographParticles], *, optics: OpticsGroup
) -> int:
    """Write RELION 3.1 ``particles.star`` (data_optics + data_particles); return the count.

    rlnImageName is ``000001@stack.mrcs`` (1-based); CTF columns come from each particle's
    ``particle_ctf`` or else its micrograph's ``ctf`` (zeros when unknown, which RELION reads
    as "no CTF").
    """
    rows: list[dict[str, object]] = []
    for entry in micrographs:
        for k in range(len(entry.particles)):
            ctf = entry.particle_ctf[k] if entry.particle_ctf is not None else entry.ctf
            rows.append(
                {
                    "rlnCoordinateX": round(float(entry.particles.x_px[k]), 2),
                    "rlnCoordinateY": round(float(entry.particles.y_px[k]), 2),
                    "rlnImageName": f"{k + 1:06d}@{entry.stack_name}",
                    "rlnMicrographName": entry.micrograph_name,
                    "rlnOpticsGroup": 1,
                    "rlnDefocusU": round(ctf.defocus_u_a, 2) if ctf else 0.0,
                    "rlnDefocusV": round(ctf.defocus_v_a, 2) if ctf else 0.0,
                    "rlnDefocusAngle": round(ctf.astigmatism_angle_deg, 3) if ctf else 0.0,
                    "rlnPhaseShift": round(ctf.phase_shift_deg, 3) if ctf else 0.0,
                    "rlnCtfBfactor": 0.0,
                    "rlnCtfScalefactor": 1.0,
                }
            )
    optics_table = pd.DataFrame(
        [
            {
                "rlnOpticsGroupName": optics.name,
                "rlnOpticsGroup": 1,
                "rlnMicrographOriginalPixelSize": optics.micrograph_pixel_size_a,
                "rlnVoltage": optics.voltage_kv,
                "rlnSphericalAberration": optics.cs_mm,
                "rlnAmplitudeContrast": optics.amplitude_contrast,
                "rlnImagePixelSize": optics.image_pixel_size_a,
                "rlnImageSize": optics.image_size_px,
                "rlnImageDimensionality": 2,
            }
        ]
    )
    starfile.write({"optics": optics_table, "particles": pd.DataFrame(rows)}, path, overwrite=True)
    return len(rows)
