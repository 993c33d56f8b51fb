"""Picking against the simulator's truth: a pick counts within half a diameter (issue 7).

Accuracy is measured on the simulator's realistic default (issue 23); where the picker misses
the goal there, a strict xfail states the measured figure and a passing test holds what it
does reach. Tests of the mechanics (bad areas, empty ice, overlays) use the ``easy`` preset.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from cryolive.engines._checks import UnusableMicrographError
from cryolive.engines.picking import (
    MicrographCtf,
    Picks,
    PickScore,
    overlay_picks,
    pick_log,
    pick_templates,
    score_picks,
)

PIXEL_A = 1.0
MATCH_PX = 45.0  # half the particle's largest diameter (90 Å)


def _score(picks: Picks, truth_yx: np.ndarray) -> PickScore:
    xy = np.stack([picks.x_px, picks.y_px], axis=1)
    return score_picks(xy, truth_yx[:, ::-1], max_distance_px=MATCH_PX)


CASES = [(8000.0, 250.0, 0.1), (15000.0, 700.0, 0.3), (25000.0, 450.0, 0.4), (10000.0, 700.0, 0.2)]


def _log_score(
    picking_truth: ModuleType, case: tuple[float, float, float], **movie: object
) -> PickScore:
    defocus_a, ice_a, density = case
    planted = picking_truth.planted_micrograph(
        np.random.default_rng(int(defocus_a + ice_a)),
        defocus_a=defocus_a,
        ice_a=ice_a,
        density=density,
        **movie,
    )
    picks = pick_log(
        planted.micrograph, pixel_size_a=PIXEL_A, diameter_min_a=60.0, diameter_max_a=100.0
    )
    assert picks.x_px.dtype == np.float32
    assert 60.0 <= picks.diameter_a <= 100.0
    return _score(picks, planted.positions_px)


@pytest.mark.xfail(
    strict=True,
    reason="issue 23, goal missed: on the simulator's realistic default (particle SNR ~0.05, "
    "3 % ice texture) the LoG picker at its default (FDR) threshold reaches F1 0.36, 0.33, "
    "0.86, 0.31 on these four (recall 0.19-0.75); see BENCHMARKS.md. Remove when it passes.",
)
@pytest.mark.parametrize("case", CASES)
def test_log_meets_the_picking_goal_on_the_realistic_default(
    picking_truth: ModuleType, case: tuple[float, float, float]
) -> None:
    score = _log_score(picking_truth, case)
    assert score.precision >= 0.95  # the goal of issue 23
    assert score.f1 >= 0.90


@pytest.mark.parametrize("case", CASES)
def test_log_recovers_realistic_particles_on_ice_without_texture(
    picking_truth: ModuleType, case: tuple[float, float, float]
) -> None:
    """What the picker does reach on the realistic default: with the particles' realistic
    contrast (against the ice) but no ice texture, measured P 0.89, 0.94, 1.00, 0.89, R 1.00,
    F1 0.94-1.00 (before the FDR threshold: P 1.00, F1 0.97-1.00): recall is there, the
    precision goal (0.95) is missed on three of four, and the texture is what defeats recall."""
    score = _log_score(picking_truth, case, ice_texture=0.0)
    assert score.precision >= 0.85  # issue 23's goal is 0.95: missed (BENCHMARKS.md)
    assert score.f1 >= 0.90


@pytest.mark.parametrize("case", CASES)
def test_log_recovers_planted_particles_on_easy_data(
    picking_truth: ModuleType, case: tuple[float, float, float]
) -> None:
    score = _log_score(picking_truth, case, preset="easy")
    # measured 1.00 / 1.00 on these four (1024², 40 e/Å², the easy preset)
    assert score.precision >= 0.95
    assert score.recall >= 0.95


def test_log_rejects_carbon_and_contamination(picking_truth: ModuleType) -> None:
    planted = picking_truth.planted_micrograph(
        np.random.default_rng(3), carbon=True, contamination=2, density=0.3, preset="easy"
    )
    kwargs = {"pixel_size_a": PIXEL_A, "diameter_min_a": 60.0, "diameter_max_a": 100.0}
    picks = pick_log(planted.micrograph, **kwargs)
    blind = pick_log(planted.micrograph, reject_bad_areas=False, **kwargs)
    score, blind_score = _score(picks, planted.positions_px), _score(blind, planted.positions_px)
    assert score.precision >= 0.95  # measured 1.00
    assert score.recall >= 0.75  # measured 0.92 (0.83 before the FDR threshold): edges lose some
    assert picks.rejected_bad_area > 0
    assert blind_score.precision < 0.8  # measured 0.42: edges and blobs score high
    # the rejected area covers the planted bad area
    by, bx = picks.bad_area.shape
    scale = planted.micrograph.shape[0] / by
    sampled = planted.bad_area[(np.arange(by) * scale).astype(int)][
        :, (np.arange(bx) * scale).astype(int)
    ]
    assert np.mean(picks.bad_area[sampled]) > 0.95


def test_log_picks_nothing_in_empty_ice(picking_truth: ModuleType) -> None:
    planted = picking_truth.planted_micrograph(
        np.random.default_rng(4), empty_fraction=0.5, preset="easy"
    )
    picks = pick_log(
        planted.micrograph, pixel_size_a=PIXEL_A, diameter_min_a=60.0, diameter_max_a=100.0
    )
    width = planted.micrograph.shape[1]
    assert np.count_nonzero(picks.x_px < 0.5 * width - MATCH_PX) == 0
    assert _score(picks, planted.positions_px).f1 >= 0.95


def _templates_and_micrograph(picking_truth: ModuleType, preset: str) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(5)
    templates = picking_truth.projections(6, rng, pixel_size_a=2.0, box_px=64)
    planted = picking_truth.planted_micrograph(rng, defocus_a=20000.0, density=0.3, preset=preset)
    ctf = MicrographCtf(
        defocus_u_a=planted.defocus_u_a,
        defocus_v_a=planted.defocus_v_a,
        astigmatism_angle_deg=planted.astigmatism_angle_deg,
    )
    return templates, planted, ctf


@pytest.mark.xfail(
    strict=True,
    reason="issue 23, goal missed: on the realistic default template matching through the CTF "
    "finds 13 of 49 (P 1.00, R 0.27); see BENCHMARKS.md. Remove this mark when it passes.",
)
def test_template_matching_meets_the_goal_on_the_realistic_default(
    picking_truth: ModuleType,
) -> None:
    templates, planted, ctf = _templates_and_micrograph(picking_truth, "realistic")
    kwargs = {"pixel_size_a": PIXEL_A, "template_pixel_size_a": 2.0, "diameter_a": 90.0}
    score = _score(pick_templates(planted.micrograph, templates, ctf=ctf, **kwargs),
                   planted.positions_px)  # fmt: skip
    assert score.precision >= 0.95
    assert score.f1 >= 0.90


def test_template_matching_through_the_ctf(picking_truth: ModuleType) -> None:
    """On the easy preset (the picker's mechanics; the realistic figure is the test above)."""
    templates, planted, ctf = _templates_and_micrograph(picking_truth, "easy")
    kwargs = {"pixel_size_a": PIXEL_A, "template_pixel_size_a": 2.0, "diameter_a": 90.0}
    picks = pick_templates(planted.micrograph, templates, ctf=ctf, **kwargs)
    score = _score(picks, planted.positions_px)
    assert score.precision >= 0.95  # measured 1.00
    assert score.recall >= 0.9  # measured 1.00
    # through the CTF the particles stand out further than with inverted templates alone
    plain = pick_templates(planted.micrograph, templates, ctf=None, **kwargs)
    assert np.median(picks.scores) > 1.2 * np.median(plain.scores)  # measured 1.6x


def test_score_picks_counts_each_particle_once() -> None:
    truth = np.array([[100.0, 100.0], [300.0, 100.0]])
    picks = np.array([[102.0, 99.0], [98.0, 101.0], [300.0, 160.0], [500.0, 500.0]])
    score = score_picks(picks, truth, max_distance_px=45.0)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (1, 3, 1)
    assert score.precision == pytest.approx(0.25)
    assert score.recall == pytest.approx(0.5)
    assert score.f1 == pytest.approx(1 / 3)


def test_overlay_marks_every_pick(picking_truth: ModuleType) -> None:
    planted = picking_truth.planted_micrograph(np.random.default_rng(6), density=0.1, preset="easy")
    picks = pick_log(
        planted.micrograph, pixel_size_a=PIXEL_A, diameter_min_a=60.0, diameter_max_a=100.0
    )
    image = overlay_picks(planted.micrograph, picks, max_size_px=512)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    green = (image[..., 1] == 255) & (image[..., 0] == 64)
    r = picks.diameter_a / 4
    inside = [(x, y) for x, y in zip(picks.x_px / 2, picks.y_px / 2, strict=True)
              if r + 2 < x < 510 - r and r + 2 < y < 510 - r]  # fmt: skip
    assert len(inside) >= 0.8 * len(picks) > 5
    for x, y in inside:
        ring = green[int(y - r - 2) : int(y + r + 3), int(x - r - 2) : int(x + r + 3)]
        assert ring.sum() > 2 * np.pi * r  # a full circle drawn around it


def test_overlay_circles_stay_visible_when_the_page_shrinks_them(picking_truth: ModuleType) -> None:
    planted = picking_truth.planted_micrograph(np.random.default_rng(6), density=0.1, preset="easy")
    picks = pick_log(
        planted.micrograph, pixel_size_a=PIXEL_A, diameter_min_a=60.0, diameter_max_a=100.0
    )
    image = overlay_picks(planted.micrograph, picks, max_size_px=1024)
    binning = -(-max(planted.micrograph.shape) // 1024)
    green = (image[..., 1] == 255) & (image[..., 0] == 64)
    x, y = int(picks.x_px[0] / binning), int(picks.y_px[0] / binning)
    r = picks.diameter_a / (2 * PIXEL_A * binning)
    # across the ring, along the row through the centre: at least 3 px of green (over a screen
    # pixel where the page shows it 384 px wide), with a dark edge outside it
    row = green[y, x : int(x + r + 6)]
    assert row.sum() >= 3, row
    edge = np.nonzero(row)[0].max() + 1  # the first pixel past the green, outward
    assert image[y, x + edge].max() < 0.3 * 255 or image[y, x + edge + 1].max() < 0.3 * 255


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"pixel_size_a": 0.0}, "pixel_size_a"),
        ({"diameter_min_a": -1.0}, "diameter_min_a"),
        ({"diameter_max_a": 50.0}, "diameter_max_a"),
        ({"n_scales": 0}, "n_scales"),
        ({"working_pixel_size_a": 0.5}, "working_pixel_size_a"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], name: str) -> None:
    image = np.random.default_rng(0).poisson(30, (256, 256)).astype(np.float32)
    settings: dict[str, float] = {
        "pixel_size_a": 1.0,
        "diameter_min_a": 60.0,
        "diameter_max_a": 100.0,
        **kwargs,
    }
    with pytest.raises(ValueError, match=name):
        pick_log(image, **settings)  # type: ignore[arg-type]


def test_unusable_micrograph_is_refused() -> None:
    image = np.full((256, 256), 7.0, dtype=np.float32)
    with pytest.raises(UnusableMicrographError, match="blank"):
        pick_log(image, pixel_size_a=1.0, diameter_min_a=60.0, diameter_max_a=100.0)
    with pytest.raises(ValueError, match="templates"):
        pick_templates(
            image + np.arange(256, dtype=np.float32),
            np.zeros((4, 4)),
            pixel_size_a=1.0,
            template_pixel_size_a=1.0,
            diameter_a=60.0,
        )
