"""Gold-standard refinement against ground truth: simulated particles of a known map, refined
from the map low-passed to 25 Å, must come close to the reconstruction from the true angles."""

from __future__ import annotations

import numpy as np
import pytest

from cryolive.engines.recon3d import (
    ParticleStack3D,
    angular_distance_deg,
    euler_to_matrix,
    fsc,
    phantom,
    resolution_at,
)
from cryolive.engines.refine3d import lowpass, reconstruct_halves, refine3d, soft_sphere
from cryolive.simulate.particles3d import simulate_particles_3d, without_truth

BOX, PIXEL, COUNT, SNR = 32, 3.0, 1500, 0.2


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return phantom(BOX, np.random.default_rng(1))


@pytest.fixture(scope="module")
def stack(truth: np.ndarray) -> ParticleStack3D:
    # Fourier-sliced from a map padded 4x (the refinement pads 2x and interpolates its own way)
    return simulate_particles_3d(
        truth, count=COUNT, pixel_size_a=PIXEL, rng=np.random.default_rng(2), snr=SNR,
        projection="fourier",
    )  # fmt: skip


def test_refinement_comes_within_1_25x_of_the_true_angles(
    truth: np.ndarray, stack: ParticleStack3D
) -> None:
    assert stack.angles_deg is not None and stack.origins_a is not None
    assert stack.subset is not None
    best = reconstruct_halves(
        stack, euler_to_matrix(stack.angles_deg), stack.origins_a / PIXEL, stack.subset
    )
    best_a = resolution_at(fsc(best.full, truth), BOX, PIXEL, 0.5)
    result = refine3d(without_truth(stack), truth, initial_lowpass_a=25.0, max_iterations=10)
    refined_a = resolution_at(fsc(result.full_map, truth), BOX, PIXEL, 0.5)
    # the bar of issue #19: FSC 0.5 vs truth within 1.25x of the true-angle reconstruction
    assert refined_a <= 1.25 * best_a, (refined_a, best_a)
    assert refined_a < 20.0, refined_a  # it found detail the 25 Å start did not have
    # the gold-standard estimate agrees with the truth's within 25 %
    assert result.resolution_a == pytest.approx(refined_a, rel=0.25)
    errors = angular_distance_deg(
        euler_to_matrix(result.angles_deg), euler_to_matrix(stack.angles_deg)
    )
    assert np.median(errors) < 10.0
    shift_err = np.hypot(*((result.origins_a - stack.origins_a) / PIXEL).T)
    assert np.median(shift_err) < 0.75
    assert np.array_equal(result.subset, stack.subset)  # the file's half sets are kept
    assert 2 <= result.iterations <= 10
    modes = [h.mode for h in result.history]
    assert modes[0] == "global" and set(modes[1:]) == {"local"}
    steps = [h.step_deg for h in result.history]
    assert steps == sorted(steps, reverse=True) and steps[-1] < steps[1]  # auto-sampling


def test_half_sets_never_see_each_other(truth: np.ndarray, stack: ParticleStack3D) -> None:
    # half 2 all noise: beyond the common 25 Å start (shells <= 6) the gold-standard FSC must
    # fall to ~0; a reference shared by the halves would pull the noise into the signal's map
    small = ParticleStack3D(
        images=np.concatenate([stack.images[:150], np.random.default_rng(5).normal(
            size=(150, BOX, BOX)).astype(np.float32) * stack.images.std()]),
        pixel_size_a=PIXEL, defocus=stack.defocus[:300],
        subset=np.repeat(np.array([1, 2]), 150),
    )  # fmt: skip
    result = refine3d(small, truth, initial_lowpass_a=25.0, max_iterations=3)
    assert np.abs(result.fsc[7:14]).max() < 0.2, result.fsc


def test_bad_input_is_refused(truth: np.ndarray, stack: ParticleStack3D) -> None:
    with pytest.raises(ValueError, match="symmetry must be Cn or Dn"):
        refine3d(stack, truth, symmetry="C0")
    with pytest.raises(ValueError, match="reference: shape"):
        refine3d(stack, truth[:16, :16, :16])
    with pytest.raises(ValueError, match="not all zero"):
        refine3d(stack, np.zeros_like(truth))
    with pytest.raises(ValueError, match="max_iterations"):
        refine3d(stack, truth, max_iterations=0)


def test_filters() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(BOX, BOX, BOX))
    low = lowpass(noise, 5.0)
    curve = fsc(low, noise)
    assert curve[1:5].min() > 0.99 and np.abs(low).sum() > 0
    power = np.abs(np.fft.rfftn(low)) ** 2
    assert fsc(low, lowpass(low, 5.0))[:5].min() > 0.99
    k = np.fft.fftfreq(BOX, 1.0 / BOX)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + np.arange(BOX // 2 + 1) ** 2)
    assert power[r > 7.5].max() < 1e-8 * power.max()
    mask = soft_sphere(BOX, 10.0)
    assert mask[BOX // 2, BOX // 2, BOX // 2] == 1.0 and mask[0, 0, 0] == 0.0
