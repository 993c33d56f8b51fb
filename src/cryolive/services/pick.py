"""The picking service: pick particles on a micrograph without templates (Laplacian of
Gaussian over the expected diameters, or with ``picker: "topaz"`` Topaz's pretrained resnet16,
an optional extra, at its default threshold), extract them, and record a ParticlePicker row.

Picking and extraction run in one step: extraction needs the micrograph the picker has just
read and takes a fraction of its time, and the two always run together in a live session.
Writes, into the run's RELION project, ``AutoPick/jobNNN/<movie>_autopick.star`` and
``_picks.png`` (the overlay the web shows), and ``Extract/jobNNN/<movie>.mrcs`` with its
``<movie>_particles.star`` (RELION 3.1: optics and particles, CTF columns filled).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.extract import default_box_px, extract_particles
from cryolive.engines.picking import MicrographCtf, Picks, overlay_picks, pick_log, pick_topaz
from cryolive.io.layout import output_base
from cryolive.io.micrograph import read_micrograph
from cryolive.io.particle_files import (
    MicrographParticles,
    OpticsGroup,
    write_coordinates,
    write_particles_star,
    write_stack,
)
from cryolive.io.png import write_rgb_png
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import ParticlePickerRecord
from cryolive.services._common import RESULTS, failed, movie_ref, record_failure
from cryolive.services.messages import PickMessage, PickOutput, WriteResults


def pick(message: PickMessage, context: Context) -> list[Emit]:
    if message.particle_diameter_max_a < message.particle_diameter_min_a:
        return failed(
            message,
            stage="pick",
            reason="bad-parameters",
            text="particle_diameter_max_a is smaller than particle_diameter_min_a",
        )
    try:
        image, _ = read_micrograph(Path(message.micrograph_path))
        size = message.micrograph_pixel_size_a
        picks = _pick(image, message)
        box = message.box_px or default_box_px(message.particle_diameter_max_a, pixel_size_a=size)
        particles = extract_particles(image, picks.x_px, picks.y_px, pixel_size_a=size, box_px=box)
    except ImportError as exc:  # picker "topaz" without the extra installed
        return failed(message, stage="pick", reason="picker-missing", text=str(exc))
    picked = output_base(message.project_dir, "AutoPick", message.program_id, message.movie_stem)
    write_coordinates(picked.with_name(picked.name + "_autopick.star"), picks)
    overlay = picked.with_name(picked.name + "_picks.png")
    write_rgb_png(overlay, overlay_picks(image, picks))
    extracted = output_base(message.project_dir, "Extract", message.program_id, message.movie_stem)
    stack = extracted.with_suffix(".mrcs")
    write_stack(stack, particles.images, pixel_size_a=particles.pixel_size_a)
    ctf = MicrographCtf(
        defocus_u_a=message.defocus_u_a,
        defocus_v_a=message.defocus_v_a,
        astigmatism_angle_deg=message.astigmatism_angle_deg,
    )
    particles_star = extracted.with_name(extracted.name + "_particles.star")
    write_particles_star(
        particles_star,
        [
            MicrographParticles(
                micrograph_name=message.micrograph_path,
                stack_name=stack.name,
                particles=particles,
                ctf=ctf,
            )
        ],
        optics=OpticsGroup(
            voltage_kv=message.voltage_kv,
            cs_mm=message.cs_mm,
            amplitude_contrast=message.amplitude_contrast,
            micrograph_pixel_size_a=size,
            image_pixel_size_a=particles.pixel_size_a,
            image_size_px=particles.images.shape[-1],
        ),
    )
    record = ParticlePickerRecord(
        movie=movie_ref(message),
        motion_correction_program_id=message.program_id,
        auto_proc_program_id=message.program_id,
        picking_template="Topaz resnet16" if message.picker == "topaz" else "LoG",
        particle_diameter_nm=picks.diameter_a / 10,
        number_of_particles=len(particles),
        summary_image_full_path=str(overlay),
    )
    emits = [Emit(RESULTS, WriteResults(records=[record]))]
    if len(particles):
        emits.append(
            Emit(
                "default",
                PickOutput(
                    particles_star=str(particles_star),
                    particles=len(particles),
                    mask_diameter_a=1.1 * message.particle_diameter_max_a,
                ),
            )
        )
    return emits


def _pick(image: NDArray[np.float32], message: PickMessage) -> Picks:
    if message.picker == "topaz":
        return pick_topaz(
            image,
            pixel_size_a=message.micrograph_pixel_size_a,
            diameter_a=0.5 * (message.particle_diameter_min_a + message.particle_diameter_max_a),
        )
    return pick_log(
        image,
        pixel_size_a=message.micrograph_pixel_size_a,
        diameter_min_a=message.particle_diameter_min_a,
        diameter_max_a=message.particle_diameter_max_a,
        threshold=message.pick_threshold,
    )


def pick_service() -> Service[PickMessage]:
    return Service("pick", PickMessage, pick, on_failure=record_failure)
