"""Simulated particles on disk: a stack, a RELION 3.1 particles.star and truth.json."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np

from cryolive.engines.extract import Particles
from cryolive.engines.picking import MicrographCtf
from cryolive.io.particle_files import (
    MicrographParticles,
    OpticsGroup,
    write_particles_star,
    write_stack,
)
from cryolive.simulate._particles import ParticleTruth, SimulatedParticles

STACK_NAME = "particles.mrcs"
STAR_NAME = "particles.star"
TRUTH_NAME = "truth.json"
PROJECTIONS_NAME = "truth_projections.mrcs"


def write_simulated_particles(sim: SimulatedParticles, out_dir: Path) -> Path:
    """Write ``particles.mrcs``, ``particles.star``, ``truth.json`` and the true projections
    (``truth_projections.mrcs``) into ``out_dir``; return the path of ``particles.star``.

    Each particle carries its own CTF in the STAR file (rlnDefocusU/V/Angle); its
    rlnCoordinateX/Y are the box centre (the particles come from no micrograph).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ps, truth = sim.particles, sim.truth
    n, box = len(ps), ps.box_px
    write_stack(out_dir / STACK_NAME, ps.images, pixel_size_a=ps.pixel_size_a)
    write_stack(out_dir / PROJECTIONS_NAME, truth.projections, pixel_size_a=truth.pixel_size_a)
    centre = np.full(n, box // 2, dtype=np.float32)
    particles = Particles(
        images=ps.images,
        x_px=centre,
        y_px=centre,
        pixel_size_a=ps.pixel_size_a,
        box_px=box,
        dropped=0,
    )
    ctfs = [
        MicrographCtf(
            defocus_u_a=float(u),
            defocus_v_a=float(v),
            astigmatism_angle_deg=float(a),
            voltage_kv=ps.voltage_kv,
            cs_mm=ps.cs_mm,
            amplitude_contrast=ps.amplitude_contrast,
        )
        for u, v, a in zip(ps.defocus_u_a, ps.defocus_v_a, ps.astigmatism_angle_deg, strict=True)
    ]
    optics = OpticsGroup(
        voltage_kv=ps.voltage_kv,
        cs_mm=ps.cs_mm,
        amplitude_contrast=ps.amplitude_contrast,
        micrograph_pixel_size_a=ps.pixel_size_a,
        image_pixel_size_a=ps.pixel_size_a,
        image_size_px=box,
    )
    star = out_dir / STAR_NAME
    write_particles_star(
        star,
        [
            MicrographParticles(
                micrograph_name="simulated",
                stack_name=STACK_NAME,
                particles=particles,
                ctf=None,
                particle_ctf=ctfs,
            )
        ],
        optics=optics,
    )
    document = {
        "specimen": truth.specimen,
        "pixel_size_a": truth.pixel_size_a,
        "box_px": box,
        "diameter_a": truth.diameter_a,
        "n_views": truth.n_views,
        "view_angles_deg": truth.view_angles_deg.round(4).tolist(),
        "projections": PROJECTIONS_NAME,
        "particles": {
            "view": truth.view.tolist(),
            "junk": truth.junk.tolist(),
            "psi_deg": truth.psi_deg.round(4).tolist(),
            "shift_a": truth.shift_a.round(4).tolist(),
        },
    }
    (out_dir / TRUTH_NAME).write_text(json.dumps(document) + "\n")
    return star


def read_particle_truth(folder: Path) -> ParticleTruth:
    """The :class:`ParticleTruth` that :func:`write_simulated_particles` wrote in ``folder``."""
    path = Path(folder) / TRUTH_NAME
    try:
        document = json.loads(path.read_text())
        table = document["particles"]
        with mrcfile.open(Path(folder) / document["projections"], mode="r") as mrc:
            projections = np.array(mrc.data, dtype=np.float32)
        return ParticleTruth(
            view=np.asarray(table["view"], dtype=np.int64),
            junk=np.asarray(table["junk"], dtype="<U6"),
            psi_deg=np.asarray(table["psi_deg"], dtype=np.float64),
            shift_a=np.asarray(table["shift_a"], dtype=np.float64).reshape(-1, 2),
            projections=projections.reshape(-1, *projections.shape[-2:]),
            view_angles_deg=np.asarray(document["view_angles_deg"], dtype=np.float64),
            pixel_size_a=float(document["pixel_size_a"]),
            diameter_a=float(document["diameter_a"]),
            specimen=str(document["specimen"]),
        )
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"folder: cannot read simulated particle truth from {path}: {exc}"
        ) from exc
