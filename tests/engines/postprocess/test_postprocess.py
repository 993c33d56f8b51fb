"""Post-processing against planted truth: the B-factor applied to the half maps is recovered,
the resolution matches the map's true agreement with the truth, the mask holds the particle."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from cryolive.engines.postprocess import PostprocessError, auto_mask, postprocess, soft_edge
from cryolive.engines.recon3d import fsc, resolution_at


@pytest.mark.parametrize(("bfactor", "noise"), [(100.0, 3.0), (60.0, 2.0), (150.0, 3.0)])
def test_bfactor_recovered_within_20_percent(
    halfmaps: ModuleType, bfactor: float, noise: float
) -> None:
    h = halfmaps.make_halves(bfactor, noise)
    result = postprocess(h.half1, h.half2, h.pixel_size_a)
    assert result.bfactor_fitted and result.guinier is not None
    assert result.bfactor_a2 == pytest.approx(bfactor, rel=0.20)
    assert result.guinier.fit_from_inv_d2 == pytest.approx(1 / 10.0**2)
    assert result.guinier.fit_to_inv_d2 == pytest.approx(1 / result.resolution_a**2)


def test_resolution_matches_the_truth(halves: Any) -> None:
    """FSC 0.143 between the halves ⇔ 0.5 between their average and the truth (Rosenthal &
    Henderson): both measured inside the same mask, within 10%."""
    result = postprocess(halves.half1, halves.half2, halves.pixel_size_a)
    m = result.mask
    average = 0.5 * (halves.half1 + halves.half2)
    truth_curve = fsc(average * m, halves.truth * m)
    expected = resolution_at(truth_curve, m.shape[0], halves.pixel_size_a, 0.5)
    assert 2 * halves.pixel_size_a < result.resolution_a < 10.0
    assert result.resolution_a == pytest.approx(expected, rel=0.10)
    # the mask removes noise: the masked FSC is better than the unmasked one where both fall
    c = result.fsc
    k = c.randomise_from_shell
    assert c.masked[k + 2] > c.unmasked[k + 2] + 0.1


def test_phase_randomised_curve(halfmaps: ModuleType) -> None:
    """Below the randomisation shell the randomised halves keep their phases (curve near the
    masked one; the mask mixes in a little of the randomised shells); beyond it they share no
    phases, so only the mask correlates them (near 0 for a soft mask)."""
    h = halfmaps.make_halves(100.0, 3.0)
    c = postprocess(h.half1, h.half2, h.pixel_size_a).fsc
    k = c.randomise_from_shell
    assert c.unmasked[k] < 0.8 <= c.unmasked[k - 1]
    np.testing.assert_allclose(c.phase_randomised[:k], c.masked[:k], atol=0.05)
    assert np.abs(c.phase_randomised[k + 3 :]).max() < 0.15
    np.testing.assert_allclose(c.corrected[:k], c.masked[:k])


def test_auto_mask_holds_the_particle(halves: Any) -> None:
    mask = auto_mask(0.5 * (halves.half1 + halves.half2), halves.pixel_size_a)
    assert mask.min() >= 0 and mask.max() == 1
    strong = halves.truth > 0.2 * halves.truth.max()
    assert mask[strong].min() > 0.99  # every strong density inside
    assert mask.mean() < 0.45  # and most of the solvent outside
    assert ((mask > 0) & (mask < 1)).mean() > 0  # a soft edge


def test_given_bfactor_and_mask_are_used(halves: Any) -> None:
    mask = auto_mask(halves.truth, halves.pixel_size_a)
    result = postprocess(halves.half1, halves.half2, halves.pixel_size_a, mask=mask, bfactor=50.0)
    assert result.bfactor_a2 == 50.0 and not result.bfactor_fitted and result.guinier is None
    np.testing.assert_allclose(result.mask, mask, atol=1e-6)
    # sharpening with a larger B lifts high frequencies: the sharpened map has more power near
    # the resolution than the plain average weighted the same way
    b0 = postprocess(halves.half1, halves.half2, halves.pixel_size_a, mask=mask, bfactor=0.0)
    assert result.sharpened.std() > b0.sharpened.std()
    np.testing.assert_allclose(result.sharpened_masked, result.sharpened * mask, rtol=1e-5)


def test_bad_input_is_refused(halves: Any) -> None:
    h1, h2, px = halves.half1, halves.half2, halves.pixel_size_a
    with pytest.raises(PostprocessError, match="half2"):
        postprocess(h1, h2[:-1, :-1, :-1], px)
    with pytest.raises(PostprocessError, match="cubic"):
        postprocess(h1[0], h2[0], px)
    with pytest.raises(PostprocessError, match="pixel_size_a"):
        postprocess(h1, h2, 0.0)
    with pytest.raises(PostprocessError, match="mask"):
        postprocess(h1, h2, px, mask=np.full(h1.shape, 2.0))
    with pytest.raises(PostprocessError, match="non-finite"):
        postprocess(np.full(h1.shape, np.nan), h2, px)


def test_soft_edge_distances() -> None:
    """One voxel grown by 2 and a 4-voxel cosine edge: 1 up to 2, ½ at 4, 0 from 6 on."""
    binary = np.zeros((24, 24, 24), bool)
    binary[12, 12, 12] = True
    mask = soft_edge(binary, 4.0, extend_px=2.0)
    line = mask[12, 12, 12:]
    np.testing.assert_allclose(line[:3], 1.0)
    assert line[4] == pytest.approx(0.5)
    assert line[3] == pytest.approx(0.5 + 0.5 * np.cos(np.pi / 4))
    np.testing.assert_allclose(line[6:], 0.0)
    assert mask[12, 12 + 4, 12] == pytest.approx(0.5)  # the same in every direction
    with pytest.raises(ValueError, match="edge_px"):
        soft_edge(binary, -1.0)


def test_a_map_too_coarse_for_a_guinier_fit_is_not_sharpened_rather_than_refused(
    halfmaps: ModuleType,
) -> None:
    """An early live refinement (worse than 10 Å) leaves no range for the fit: the map comes
    back unsharpened (B = 0, not fitted) instead of an error that would stop the pipeline."""
    h = halfmaps.make_halves(3000.0, 3.0)
    result = postprocess(h.half1, h.half2, h.pixel_size_a)
    assert result.resolution_a > 8.0
    assert not result.bfactor_fitted and result.guinier is None and result.bfactor_a2 == 0.0
    assert np.isfinite(result.sharpened).all()
    # with a B-factor given, that one is used
    assert postprocess(h.half1, h.half2, h.pixel_size_a, bfactor=100.0).bfactor_a2 == 100.0
