"""Turn a plan into the ground-truth record of one movie."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryolive.simulate._config import VisitConfig
from cryolive.simulate._layout import ImageRecord
from cryolive.simulate._render import ExposurePlan, ExposureRenderer
from cryolive.simulate._specimen import Specimen
from cryolive.simulate._truth import IceTruth, LocalMotionTruth, MovieTruth, ParticleTruth


def _ice(plan: ExposurePlan) -> IceTruth:
    ny, nx = plan.shape_px
    y = np.linspace(0, ny - 1, 64)[:, None]
    x = np.linspace(0, nx - 1, 64)[None, :]
    fine = plan.ice_thickness_a(y, x)
    cy = (np.arange(8) + 0.5) * ny / 8
    cx = (np.arange(8) + 0.5) * nx / 8
    coarse = plan.ice_thickness_a(cy[:, None], cx[None, :])
    return IceTruth(
        mean_a=float(fine.mean()),
        min_a=float(fine.min()),
        max_a=float(fine.max()),
        map_8x8_a=np.round(coarse, 2).tolist(),
    )


def movie_truth(
    plan: ExposurePlan,
    renderer: ExposureRenderer,
    config: VisitConfig,
    specimens: list[Specimen],
    record: ImageRecord,
    *,
    movie_path: Path,
    meta_path: Path,
    shape: tuple[int, int, int],
) -> MovieTruth:
    """The truth of one movie (paths relative to the visit folder)."""
    movie = config.movie
    local = None
    if np.any(plan.local_px):
        local = LocalMotionTruth(
            tile_px=plan.tile_px,
            centres_y_px=plan.tile_centres[0].tolist(),
            centres_x_px=plan.tile_centres[1].tolist(),
            dy_px=np.round(plan.local_px[..., 0], 5).tolist(),
            dx_px=np.round(plan.local_px[..., 1], 5).tolist(),
        )
    particles = [
        ParticleTruth(
            x_px=float(x),
            y_px=float(y),
            rot_deg=float(a),
            tilt_deg=float(b),
            psi_deg=float(c),
            species=specimens[int(s)].name,
        )
        for (y, x), (a, b, c), s in zip(
            plan.positions_px, plan.orientations_deg, plan.species, strict=True
        )
    ]
    return MovieTruth(
        movie=str(movie_path),
        metadata=str(meta_path),
        format=config.movie_format,
        shape_px=shape,
        pixel_size_a=plan.pixel_size_a,
        dose_e_per_a2=movie.dose_e_per_a2,
        dose_per_frame_e_per_px=float(renderer.electrons_per_px),
        exposure_time_s=movie.exposure_time_s,
        eer_frames_per_fraction=movie.eer_frames_per_fraction
        if config.movie_format == "eer"
        else None,
        acquired_at=record.acquired_at,
        voltage_kv=movie.voltage_kv,
        cs_mm=movie.cs_mm,
        amplitude_contrast=movie.amplitude_contrast,
        defocus_u_a=plan.defocus_u_a,
        defocus_v_a=plan.defocus_v_a,
        astigmatism_angle_deg=plan.astigmatism_angle_deg,
        phase_shift_deg=plan.phase_shift_deg,
        envelope_bfactor_a2=movie.envelope_bfactor_a2,
        nominal_defocus_a=record.nominal_defocus_a,
        drift_x_px=np.round(plan.drift_px[:, 1], 5).tolist(),
        drift_y_px=np.round(plan.drift_px[:, 0], 5).tolist(),
        local_motion=local,
        ice_thickness=_ice(plan),
        particles=particles,
    )
