"""The CTF service: fit a motion-corrected micrograph's CTF, write the diagnostic files, and send
a CTF record to the writer. An unusable micrograph is recorded as a failure, not a number; where
a spectrum could be computed its files are written all the same, with the best guess stamped
NOT TRUSTED and the reason in words in ``<stem>_ctf.json``."""

from __future__ import annotations

from pathlib import Path

from cryolive.engines.ctf import CtfFitError, CtfSearch, Optics, estimate_ctf
from cryolive.io.layout import output_base
from cryolive.io.micrograph import read_micrograph
from cryolive.io.outputs.ctf import write_ctf_outputs
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import CtfRecord
from cryolive.services._common import RESULTS, movie_ref, record_failure
from cryolive.services.messages import CtfMessage, CtfOutput, WriteResults


def _box(wanted_px: int, shape: tuple[int, ...]) -> int:
    """The tile size: as asked, but no more than half the micrograph's smaller side (a power
    of two), so small micrographs still give several tiles to average."""
    fits = 1 << max(6, (min(shape) // 2).bit_length() - 1)
    return min(wanted_px, fits)


def estimate(message: CtfMessage, context: Context) -> list[Emit]:
    base = output_base(message.project_dir, "CtfFind", message.program_id, message.movie_stem)
    image, _ = read_micrograph(Path(message.micrograph_path))
    ctf = message.ctf
    optics = Optics(
        pixel_size_a=message.micrograph_pixel_size_a,
        voltage_kv=message.voltage_kv,
        cs_mm=ctf.cs_mm,
        amplitude_contrast=ctf.amplitude_contrast,
    )
    search = CtfSearch(
        box_px=_box(ctf.box_px, image.shape),
        min_res_a=ctf.min_resolution_a,
        max_res_a=ctf.max_resolution_a,
        min_defocus_a=ctf.min_defocus_a,
        max_defocus_a=ctf.max_defocus_a,
        defocus_step_a=ctf.defocus_step_a,
        fit_phase_shift=ctf.fit_phase_shift,
        min_phase_shift_deg=ctf.min_phase_shift_deg,
        max_phase_shift_deg=ctf.max_phase_shift_deg,
        phase_shift_step_deg=ctf.phase_shift_step_deg,
        known_astigmatism_a=ctf.known_astigmatism_a,
        known_astigmatism_angle_deg=ctf.known_astigmatism_angle_deg,
    )
    try:
        fit = estimate_ctf(image, optics=optics, search=search)
    except CtfFitError as exc:
        if exc.best_guess is not None:  # its spectrum, curves and PNG, stamped not trusted
            write_ctf_outputs(
                exc.best_guess,
                base.parent,
                base.name,
                micrograph=Path(message.micrograph_path),
                optics=optics,
                search=search,
                not_trusted=exc.detail,
            )
        raise
    write_ctf_outputs(
        fit,
        base.parent,
        base.name,
        micrograph=Path(message.micrograph_path),
        optics=optics,
        search=search,
    )
    r = fit.result
    record = CtfRecord(
        movie=movie_ref(message),
        motion_correction_program_id=message.program_id,
        auto_proc_program_id=message.program_id,
        box_size=r.box_px,
        min_resolution_a=r.min_res_a,
        max_resolution_a=r.max_res_a,
        min_defocus_a=ctf.min_defocus_a,
        max_defocus_a=ctf.max_defocus_a,
        defocus_step_a=ctf.defocus_step_a,
        astigmatism_a=r.astigmatism_a,
        astigmatism_angle_deg=r.astigmatism_angle_deg,
        estimated_resolution_a=r.fit_resolution_a,
        estimated_defocus_a=r.defocus_a,
        amplitude_contrast=ctf.amplitude_contrast,
        cc_value=r.cc,
        fft_theoretical_full_path=str(base.parent / f"{base.name}_ctf_diag.png"),
    )
    picking = CtfOutput(
        defocus_u_a=r.defocus_u_a,
        defocus_v_a=r.defocus_v_a,
        astigmatism_angle_deg=r.astigmatism_angle_deg,
    )
    return [Emit(RESULTS, WriteResults(records=[record])), Emit("default", picking)]


def ctf_service() -> Service[CtfMessage]:
    return Service("ctf", CtfMessage, estimate, on_failure=record_failure)
