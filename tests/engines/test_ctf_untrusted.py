"""CTF fits a user can look at when they cannot be trusted, the model drawn only over the
fitted rings, and a known astigmatism held fixed (CTFFIND's options).

Micrographs from ``tests/engines/ctf_truth.py`` (1024², 2 Å/px, tiles of 256 px).
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest

from cryolive.engines.ctf import CtfFitError, CtfSearch, Optics, estimate_ctf

OPTICS = Optics(pixel_size_a=2.0)
SEARCH = CtfSearch(box_px=256)
INTERNAL_WORDS = ("SD of noise", "box_px", "max_res_a", "min_res_a", "significance")


def test_no_thon_rings_still_gives_a_best_guess_with_reason_in_words() -> None:
    noise = np.random.default_rng(5).poisson(40.0, (1024, 1024)).astype(np.float32)
    with pytest.raises(CtfFitError) as caught:
        estimate_ctf(noise, optics=OPTICS, search=SEARCH)
    error = caught.value
    assert error.reason == "no-thon-rings"
    guess = error.best_guess
    assert guess is not None
    assert guess.diagnostic.shape == (256, 256)
    assert guess.diagnostic.min() >= 0.0 and guess.diagnostic.max() <= 1.0
    assert len(guess.curves.frequency_per_a) == len(guess.curves.fit) > 50
    assert SEARCH.min_defocus_a <= guess.result.defocus_a <= SEARCH.max_defocus_a
    assert "not to be trusted" in error.detail and "Thon rings" in error.detail
    assert f"{guess.result.defocus_a:.0f} Å" in error.detail
    assert not any(word in str(error) for word in INTERNAL_WORDS)


def test_model_is_drawn_only_over_the_fitted_rings(ctf_truth: ModuleType) -> None:
    # Strong envelope decay: the rings fade well before Nyquist (fit resolution ~8-12 Å).
    image = ctf_truth.micrograph(
        np.random.default_rng(64), defocus_u_a=12000.0, defocus_v_a=12000.0, bfactor_a2=600
    )
    fit = estimate_ctf(image, optics=OPTICS, search=SEARCH)
    res = fit.result.fit_resolution_a
    assert res > 2 * OPTICS.pixel_size_a + 1.0  # short of Nyquist, or the test proves nothing
    yy, xx = np.mgrid[0:256, 0:256] - 128
    r_px = np.hypot(yy, xx)
    right = xx > 0
    r_fit = 256 * OPTICS.pixel_size_a / res
    beyond = right & (r_px > r_fit + 1.5)
    within = right & (r_px > 256 * 2.0 / SEARCH.min_res_a + 1) & (r_px < r_fit - 1.5)
    assert np.all(fit.diagnostic[beyond] == 0.5)
    assert fit.diagnostic[within].std() > 0.1  # the rings are drawn where they were fitted


@pytest.mark.parametrize(("known_a", "angle_deg"), [(800.0, 20.0), (0.0, 0.0)])
def test_a_known_astigmatism_is_held(
    ctf_truth: ModuleType, known_a: float, angle_deg: float
) -> None:
    image = ctf_truth.micrograph(
        np.random.default_rng(65), defocus_u_a=16000.0, defocus_v_a=15200.0, angle_deg=20.0
    )
    search = CtfSearch(
        box_px=256, known_astigmatism_a=known_a, known_astigmatism_angle_deg=angle_deg
    )
    r = estimate_ctf(image, optics=OPTICS, search=search).result
    assert r.astigmatism_a == pytest.approx(known_a, abs=1e-6)
    if known_a > 0:
        assert r.astigmatism_angle_deg == pytest.approx(angle_deg, abs=1e-6)
    assert r.defocus_a == pytest.approx(15600.0, rel=0.01)  # measured within 0.3 %
    free = estimate_ctf(image, optics=OPTICS, search=SEARCH).result
    assert free.astigmatism_a == pytest.approx(800.0, abs=100.0)  # fitted when not held
    assert not math.isclose(free.astigmatism_a, 800.0, abs_tol=1e-6)


def test_known_astigmatism_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="known_astigmatism_a"):
        CtfSearch(known_astigmatism_a=-10.0)
