"""3D classification of two different maps mixed 50/50, from their average as the reference, the
particles off-centre by up to ±3 px and their origins not given (the translation search finds
them)."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import numpy as np
import pytest

from cryolive.engines.class3d import angular_efficiency, classify3d
from cryolive.engines.recon3d import euler_to_matrix, random_rotations

BOX, PIXEL_A, PER_MAP = 32, 4.0, 600
MIN_ACCURACY = 0.9


def test_two_maps_are_separated(sim3d: ModuleType) -> None:
    rng = np.random.default_rng(3)
    a, b = sim3d.blobs(rng), sim3d.blobs(rng)
    sim, labels = sim3d.simulate([a, b], [PER_MAP, PER_MAP], rng, snr=0.2, max_shift_px=3.0)
    reference = 0.5 * (a.volume(BOX) + b.volume(BOX))
    result = classify3d(
        replace(sim.stack, origins_a=None), reference, classes=2, iterations=2, sgd_steps=25,
        angle_step_deg=15.0, max_resolution_a=15.0, rng=np.random.default_rng(1),
    )  # fmt: skip
    # the planted origins (up to 4.2 px off-centre, 2.4 px median): found to 1 px, median
    error_px = np.hypot(*((result.origins_a - sim.stack.origins_a) / PIXEL_A).T)
    assert np.median(error_px) < 1.0
    # labels matched to the truth by the better of the two permutations
    accuracy = max(np.mean(result.classes == labels), np.mean(result.classes == 1 - labels))
    assert accuracy >= MIN_ACCURACY
    assert abs(result.class_sizes - PER_MAP).max() <= 0.1 * PER_MAP
    assert result.class_fractions.sum() == pytest.approx(1.0)
    # half-set FSC 0.143: better than the start (30 Å), no better than Nyquist (8 Å)
    assert np.all((result.resolution_a > 8.0) & (result.resolution_a < 30.0))
    assert np.all(result.angular_efficiency > 0.8)  # random views cover the sphere
    assert result.score[result.best_class] == result.score.max() > 0
    # each class map is its own particles' map: it correlates best with its own truth
    own = labels[result.classes == 0].mean() > 0.5  # class 0 holds mostly map b
    truths = [a.volume(BOX), b.volume(BOX)]
    for k in range(2):
        corr = [np.corrcoef(result.maps[k].ravel(), t.ravel())[0, 1] for t in truths]
        assert int(np.argmax(corr)) == (int(own) if k == 0 else 1 - int(own))


def test_angular_efficiency_of_uniform_and_preferred_views() -> None:
    rng = np.random.default_rng(0)
    assert angular_efficiency(random_rotations(2000, rng)) > 0.9
    top = euler_to_matrix(np.column_stack([rng.uniform(0, 360, 2000), rng.uniform(0, 10, 2000),
                                           rng.uniform(0, 360, 2000)]))  # fmt: skip
    assert angular_efficiency(top) < 0.1
    assert angular_efficiency(np.zeros((0, 3, 3))) == 0.0


def test_bad_reference_and_settings_are_refused(sim3d: ModuleType) -> None:
    rng = np.random.default_rng(0)
    sim, _ = sim3d.simulate([sim3d.blobs(rng, count=5)], [60], rng, box=16)
    good = np.zeros((16, 16, 16), np.float32)
    with pytest.raises(ValueError, match=r"reference: need a \(16, 16, 16\)"):
        classify3d(sim.stack, np.zeros((32, 32, 32)), classes=2, rng=rng)
    with pytest.raises(ValueError, match="non-finite"):
        classify3d(sim.stack, np.full((16, 16, 16), np.nan), classes=2, rng=rng)
    with pytest.raises(ValueError, match="sgd_steps must be at least 0"):
        classify3d(sim.stack, good, classes=2, sgd_steps=-1, rng=rng)
    with pytest.raises(ValueError, match="classes must be at least 1"):
        classify3d(sim.stack, good, classes=0, rng=rng)
    with pytest.raises(ValueError, match="need at least 80"):
        classify3d(sim.stack, good, classes=4, rng=rng)
