"""The simulator's default is as hard as real data (issue 23); ``easy`` is the old default.

Measured on the noiseless expected image of a 1k exposure at 40 e/Å² (1 Å/px, 1 e/px per frame
over 40 frames), so that the figures are the planted ones, not a noisy estimate of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryolive.simulate import (
    ExposureRenderer,
    MovieConfig,
    plan_exposure,
    procedural_specimen,
)
from cryolive.simulate._motion import drift_trajectory

_SHAPE = (1024, 1024)
_BOX = 90  # the particle's largest diameter (Å = px here)


def _expected(config: MovieConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The noiseless expected counts of the whole exposure (one frame of the full dose), and
    the particle centres (p, 2) y, x."""
    spec = procedural_specimen(seed=1, n_residues=1500, radius_a=45.0)
    rng = np.random.default_rng(seed)
    plan = plan_exposure(config, [spec], np.ones(1), shape_px=_SHAPE, pixel_size_a=1.0, rng=rng)
    image = next(iter(ExposureRenderer(plan, config, [spec], rng=rng).frames()))
    return image.astype(np.float64), plan.positions_px


def _particle_snr(preset: str) -> float:
    """Mean over particles of var(particle signal in its 90-px box) / var(noise per pixel),
    the noise being the Poisson counts and the ice's own structure, in the summed exposure.

    The image is linear in ``particle_contrast`` (same draws otherwise), so the particles'
    signal is the difference from a render with (almost) no particle contrast."""
    fixed = dict(n_frames=1, dose_e_per_a2=40.0, defocus_range_a=(15000.0, 15000.0),
                 ice_thickness_range_a=(400.0, 400.0), drift_total_px=0.0,
                 local_motion_px=0.0, radiation_damage=False)  # fmt: skip
    config = MovieConfig.preset(preset, **fixed)
    image, centres = _expected(config)
    faint = config.model_copy(update={"particle_contrast": 1e-6})
    background, _ = _expected(faint)
    signal = image - background
    noise_var = background.mean() + background.var()
    h = _BOX // 2
    inside = [(int(y), int(x)) for y, x in centres
              if h <= y < _SHAPE[0] - h and h <= x < _SHAPE[1] - h]  # fmt: skip
    assert len(inside) > 20
    return float(
        np.mean([signal[y - h : y + h, x - h : x + h].var() for y, x in inside]) / noise_var
    )


def test_default_particles_have_the_snr_of_real_single_particles() -> None:
    # The range quoted for single particles in low-dose images is 0.01-0.1 (e.g. Baxter et al.
    # 2009, doi:10.1016/j.jsb.2009.02.012); measured 0.055 (easy: 0.62).
    assert 0.01 <= _particle_snr("realistic") <= 0.1
    assert _particle_snr("easy") > 0.3


def test_default_dose_is_about_one_electron_per_pixel_and_frame() -> None:
    config = MovieConfig()
    assert config.dose_e_per_a2 / config.n_frames * 1.0**2 == pytest.approx(1.0)


def test_default_drift_settles_fast_then_creeps() -> None:
    config = MovieConfig()
    n = config.n_frames
    drift = drift_trajectory(n, np.random.default_rng(2), total_px=4.0, jitter_px=0.0,
                             settle_frames=config.drift_settle_frames,
                             creep_fraction=config.drift_creep_fraction)  # fmt: skip
    steps = np.linalg.norm(np.diff(drift, axis=0), axis=1)
    # settle: the first 3 frames move more than the last 20 together
    assert steps[:3].sum() > steps[-20:].sum()
    # creep: after the settle, a steady motion at constant speed, not a stop
    late = steps[-20:]
    assert late.min() > 0.01 and np.ptp(late) < 0.05 * late.mean()
    # the path bends: creep is not along the settle's direction (for this draw)
    first, last = drift[5], drift[-1] - drift[20]
    cos = np.dot(first, last) / (np.linalg.norm(first) * np.linalg.norm(last))
    assert cos < 0.999
    # the old model (easy) stops: its last steps are a few % of its first ones
    old = drift_trajectory(n, np.random.default_rng(2), total_px=4.0, jitter_px=0.0)
    old_steps = np.linalg.norm(np.diff(old, axis=0), axis=1)
    assert old_steps[-1] < 0.1 * old_steps[0]


def test_easy_preset_draws_the_old_drift_exactly() -> None:
    """The easy preset's drift is the pre-issue-23 model with the same random draws."""
    rng = np.random.default_rng(7)
    angle, length = rng.uniform(0, 2 * np.pi), 4.0 * rng.uniform(0.5, 1.5)
    t = np.arange(40.0)
    shape = 1.0 - np.exp(-t / 10.0)
    path = (shape / shape[-1])[:, None] * length * np.array([np.sin(angle), np.cos(angle)])
    steps = rng.normal(0.0, 0.05, size=(40, 2))
    steps[0] = 0.0
    easy = MovieConfig.preset("easy")
    found = drift_trajectory(40, np.random.default_rng(7), total_px=4.0,
                             jitter_px=easy.drift_jitter_px,
                             settle_frames=easy.drift_settle_frames,
                             creep_fraction=easy.drift_creep_fraction)  # fmt: skip
    np.testing.assert_allclose(found, path + np.cumsum(steps, axis=0), atol=1e-12)


def test_default_ice_has_a_low_frequency_texture_of_the_stated_size() -> None:
    fixed = dict(n_frames=1, particle_density=0.0, ice_phase_noise_rad=0.0, ice_gradient=0.0,
                 drift_total_px=0.0, local_motion_px=0.0)  # fmt: skip
    realistic, _ = _expected(MovieConfig(**fixed))
    easy, _ = _expected(MovieConfig.preset("easy", **fixed))
    # relative sd of the image smoothed over 32 px (the texture is coarser than that)
    texture = ndimage.gaussian_filter(realistic, 8.0)[64:-64, 64:-64]
    assert texture.std() / texture.mean() == pytest.approx(MovieConfig().ice_texture, rel=0.3)
    flat = ndimage.gaussian_filter(easy, 8.0)[64:-64, 64:-64]
    assert flat.std() / flat.mean() < 0.002


def test_presets_are_named_and_overridable() -> None:
    assert MovieConfig.preset("realistic") == MovieConfig()
    easy = MovieConfig.preset("easy", n_frames=8)
    assert easy.n_frames == 8 and easy.particle_contrast == 1.0 and easy.ice_texture == 0.0
    with pytest.raises(ValueError, match="preset"):
        MovieConfig.preset("kind")
    with pytest.raises(ValueError, match="particle_contrast"):
        MovieConfig.preset("easy", particle_contrast=0.0)
