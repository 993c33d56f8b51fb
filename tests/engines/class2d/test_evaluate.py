"""Scoring 2D classes against simulated truth: perfect classes score Nyquist and 100 %, shuffled
ones score low."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryolive.engines.class2d import Class2DResult, evaluate_classes
from cryolive.engines.class2d._evaluate import resample_to
from cryolive.simulate import ParticleTruth, procedural_specimen, simulate_particles

N_VIEWS, WORK_BOX, WORK_PIXEL_A = 5, 32, 4.0


@pytest.fixture(scope="module")
def truth() -> ParticleTruth:
    sim = simulate_particles(
        procedural_specimen(seed=1), n_particles=120, n_views=N_VIEWS, box_px=64,
        pixel_size_a=2.0, junk_fraction={"ice": 0.1, "empty": 0.1}, seed=4,
    )  # fmt: skip
    return sim.truth


def _result(averages: np.ndarray, assignment: np.ndarray, selected: np.ndarray) -> Class2DResult:
    k, n = averages.shape[0], assignment.shape[0]
    return Class2DResult(
        averages=averages.astype(np.float32),
        pixel_size_a=WORK_PIXEL_A,
        assignment=assignment,
        psi_deg=np.zeros(n),
        shift_a=np.zeros((n, 2)),
        probability=np.ones(n),
        particles_per_class=np.bincount(assignment, minlength=k),
        resolution_a=np.full(k, np.inf),
        score=selected.astype(np.float64),
        selected=selected,
    )


def _perfect(
    truth: ParticleTruth, *, turn_deg: float = 0.0, shift_px: tuple[float, float] = (0, 0)
) -> Class2DResult:
    """One class per true view (its projection at the working pixel) and one of junk."""
    views = resample_to(
        truth.projections, pixel_size_a=2.0, to_pixel_size_a=WORK_PIXEL_A, box_px=WORK_BOX
    )
    if turn_deg or any(shift_px):
        views = np.stack(
            [ndimage.shift(ndimage.rotate(v, turn_deg, reshape=False), shift_px) for v in views]
        )
    junk_class = np.random.default_rng(0).standard_normal((1, WORK_BOX, WORK_BOX))
    assignment = np.where(truth.view >= 0, truth.view, N_VIEWS)
    selected = np.array([True] * N_VIEWS + [False])
    return _result(np.concatenate([views, junk_class]), assignment, selected)


def test_perfect_classes_score_nyquist_and_full_assignment(truth: ParticleTruth) -> None:
    q = evaluate_classes(_perfect(truth), truth, truth_pixel_size_a=2.0)
    assert list(q.best_view[:N_VIEWS]) == list(range(N_VIEWS))
    assert np.allclose(q.resolution_a[:N_VIEWS], 2 * WORK_PIXEL_A)
    assert q.median_resolution_a == pytest.approx(2 * WORK_PIXEL_A)
    assert np.all(q.correlation[:N_VIEWS] > 0.999)
    assert q.true_view_fraction == 1.0 and q.junk_rejected == 1.0 and q.selected_good == 1.0
    assert q.junk_fraction[N_VIEWS] == 1.0 and np.all(q.junk_fraction[:N_VIEWS] == 0)


def test_turned_and_shifted_classes_are_aligned(truth: ParticleTruth) -> None:
    q = evaluate_classes(
        _perfect(truth, turn_deg=37.0, shift_px=(1.3, -2.6)), truth, truth_pixel_size_a=2.0
    )
    assert list(q.best_view[:N_VIEWS]) == list(range(N_VIEWS))
    assert np.all(q.resolution_a[:N_VIEWS] < 1.3 * 2 * WORK_PIXEL_A), q.resolution_a
    assert q.true_view_fraction == 1.0


def test_the_arrays_form_gives_the_same_answer(truth: ParticleTruth) -> None:
    result = _perfect(truth)
    arrays = (truth.projections, truth.view, truth.junk != "")
    a = evaluate_classes(
        result, arrays, truth_pixel_size_a=2.0, particle_diameter_a=truth.diameter_a
    )
    b = evaluate_classes(result, truth, truth_pixel_size_a=2.0)
    assert np.array_equal(a.best_view, b.best_view)
    assert np.allclose(a.resolution_a, b.resolution_a)


def test_shuffled_assignments_and_blurred_classes_score_low(truth: ParticleTruth) -> None:
    perfect = _perfect(truth)
    rng = np.random.default_rng(1)
    shuffled = _result(perfect.averages, rng.permutation(perfect.assignment), perfect.selected)
    q = evaluate_classes(shuffled, truth, truth_pixel_size_a=2.0)
    assert q.true_view_fraction < 0.45
    assert q.junk_rejected < 0.5
    # every class the mean of all views: no class resolves a view
    mixed = np.repeat(perfect.averages[:N_VIEWS].mean(axis=0, keepdims=True), N_VIEWS + 1, axis=0)
    q = evaluate_classes(
        _result(mixed, perfect.assignment, perfect.selected), truth, truth_pixel_size_a=2.0
    )
    assert q.median_resolution_a > 2.5 * 2 * WORK_PIXEL_A  # ~24 Å against 8 Å when perfect
    assert q.true_view_fraction < 0.45


def test_bad_truth_is_refused(truth: ParticleTruth) -> None:
    result = _perfect(truth)
    arrays = (truth.projections, truth.view, truth.junk)
    with pytest.raises(ValueError, match="particle_diameter_a"):
        evaluate_classes(result, arrays, truth_pixel_size_a=2.0)
    with pytest.raises(ValueError, match="one entry per particle"):
        evaluate_classes(
            result, (truth.projections, truth.view[:-1], truth.junk[:-1]),
            truth_pixel_size_a=2.0, particle_diameter_a=90.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="truth_pixel_size_a"):
        evaluate_classes(result, truth, truth_pixel_size_a=0.0)
