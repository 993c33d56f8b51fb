"""The engines on data made by cryojax (``cryojax_data.py``): its atomic-model projections,
its CTF and conventions, with our Poisson counts and our drift. Tolerances from the issue's
goals, set at what is reached here with a margin (figures measured on this machine).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from cryolive.engines.ctf import CtfSearch, Optics, ctf_2d, estimate_ctf
from cryolive.engines.motion import correct_motion
from cryolive.engines.picking import PickScore, pick_log, score_picks


def _angle_error(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


@pytest.mark.parametrize("cryojax_angle", [0.0, 35.0, 120.0])
def test_cryojax_ctf_is_cryolives_ctf_under_the_documented_mapping(
    cj: ModuleType, cryojax_angle: float
) -> None:
    import cryojax.simulator as cxs
    from cryojax.constants import wavelength_from_kilovolts
    from cryojax.ndimage import make_frequency_grid

    shape, px = (64, 96), 2.0
    grid = make_frequency_grid(shape, px, outputs_rfftfreqs=False)
    theirs = np.asarray(
        cxs.AstigmaticCTF(12000.0, 1000.0, cryojax_angle, 2.7)(
            grid, float(wavelength_from_kilovolts(300.0)), amplitude_contrast_ratio=0.07
        )
    )
    optics = Optics(pixel_size_a=px, amplitude_contrast=0.07)
    mapped = (90.0 - cryojax_angle) % 180.0  # documented in cryojax_data.py and docs
    ours = ctf_2d(shape, optics=optics, defocus_u_a=12500.0, defocus_v_a=11500.0,
                  astigmatism_angle_deg=mapped)  # fmt: skip
    np.testing.assert_allclose(ours, theirs, atol=5e-3)  # float32 and the wavelength's digits
    unmapped = ctf_2d(shape, optics=optics, defocus_u_a=12500.0, defocus_v_a=11500.0,
                      astigmatism_angle_deg=cryojax_angle)  # fmt: skip
    if cryojax_angle != 45.0:
        assert np.abs(unmapped - theirs).max() > 0.5  # the mapping matters


def test_ctf_defocus_on_a_cryojax_micrograph(cj: ModuleType) -> None:
    m = cj.micrograph(np.random.default_rng(1), pixel_size_a=2.0, n_particles=60,
                      defocus_a=15000.0, astigmatism_a=800.0, cryojax_angle_deg=30.0,
                      dose_per_px=40.0, amorphous_phase=0.1)  # fmt: skip
    fit = estimate_ctf(m.image, optics=Optics(pixel_size_a=2.0, amplitude_contrast=0.07),
                       search=CtfSearch(box_px=256))  # fmt: skip
    r = fit.result
    # measured: U 15394.5 / V 14607.4 Å (truth 15400 / 14600), angle 59.75° (truth 60°)
    assert abs(r.defocus_u_a - m.defocus_u_a) < 100.0
    assert abs(r.defocus_v_a - m.defocus_v_a) < 100.0
    assert _angle_error(r.astigmatism_angle_deg, m.angle_deg) < 3.0


def _picking_score(
    cj: ModuleType,
    micrographs: list[tuple[int, float]],
    *,
    diameter_a: float,
    range_a: tuple[float, float],
    match_px: float,
    **kwargs: float,
) -> tuple[PickScore, list[PickScore]]:
    each = []
    for seed, defocus_a in micrographs:
        m = cj.micrograph(np.random.default_rng(seed), defocus_a=defocus_a,
                          particle_diameter_a=diameter_a, **kwargs)  # fmt: skip
        picks = pick_log(m.image, pixel_size_a=1.0, diameter_min_a=range_a[0],
                         diameter_max_a=range_a[1])  # fmt: skip
        xy = np.stack([picks.x_px, picks.y_px], axis=1)
        each.append(score_picks(xy, m.centres_yx[:, ::-1], max_distance_px=match_px))
    total = PickScore(
        true_positives=sum(s.true_positives for s in each),
        false_positives=sum(s.false_positives for s in each),
        false_negatives=sum(s.false_negatives for s in each),
    )
    return total, each


def test_picking_at_default_settings_on_cryojax_particles(cj: ModuleType) -> None:
    # the four micrographs of bench/independent.py: 120 particles 25-35 Å, 1.0-1.8 µm
    total, each = _picking_score(cj, [(2, 12000.0), (3, 18000.0), (5, 15000.0), (6, 10000.0)],
                                 diameter_a=30.0, range_a=(25.0, 35.0), match_px=15.0)  # fmt: skip
    # measured: P 0.985 R 0.829 F1 0.900 (F1 0.89 / 0.97 / 0.84 / 0.90 each); before the
    # whitening and the noise count (issue 23): P 0.961 R 0.863 F1 0.909 (0.90 / 0.95 / 0.87
    # / 0.91), a threshold that let 8-30 noise maxima through on particle-free ice; before
    # the FDR threshold and the filter widths: F1 0.879 (0.91 / 0.97 / 0.83 / 0.79)
    assert total.f1 >= 0.90  # issue #23's goal at default settings
    assert total.precision >= 0.95
    assert min(s.f1 for s in each) >= 0.80


def test_picking_larger_cryojax_particles_at_default_settings(cj: ModuleType) -> None:
    # 50 Å particles, picked over 40-60 Å, at the two lowest defocus values (the hardest)
    total, _ = _picking_score(cj, [(21, 12000.0), (24, 10000.0)], diameter_a=50.0,
                              range_a=(40.0, 60.0), match_px=25.0, n_particles=80)  # fmt: skip
    # measured: P 1.00 R 0.84 F1 0.91 (0.96 and 0.86; issue 23's whitening and noise count:
    # before them P 0.99 R 0.90 F1 0.94, 0.97 and 0.91); before that: F1 0.63 and 0.00 (the fixed
    # Lindeberg width reached below the CTF's band and the threshold sat at 3.7-5 SD)
    assert total.f1 >= 0.90
    assert total.precision >= 0.95


def test_motion_drift_on_a_cryojax_movie(cj: ModuleType) -> None:
    mv = cj.movie(np.random.default_rng(4), shape=(512, 512), n_frames=24)
    assert cj.drift_rmse(np.zeros_like(mv.drift_px), mv.drift_px) > 0.9  # worth recovering
    result = correct_motion(mv.frames, pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0,
                            patches=(5, 5), workers=2)  # fmt: skip
    # measured 0.46 px at 512² x 24, 1 e/px/frame (bench figures at 1k and 4k: BENCHMARKS.md)
    assert cj.drift_rmse(result.shifts_px, mv.drift_px) < 0.6
    assert result.converged
