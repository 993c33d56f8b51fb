"""Ice thickness engine: planted thickness maps are ranked and measured; a planted ice ring is
seen; unusable micrographs and bad parameters give clear errors."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from scipy.stats import spearmanr

from cryolive.engines.ice import IceThicknessError, estimate_ice_thickness

DOSE = 40.0


def _micrograph(ctf_truth: ModuleType, rng: np.random.Generator, ice: object) -> np.ndarray:
    return ctf_truth.micrograph(
        rng, pixel_size_a=1.0, defocus_u_a=12000.0, defocus_v_a=11500.0, ice=ice
    )


def test_ranks_and_measures_planted_thickness(ctf_truth: ModuleType) -> None:
    # Issue 6: Spearman >= 0.9 against the truth. Planted: t/Λ = mean + 0.08 * smooth field.
    rng = np.random.default_rng(71)
    truth, found = [], []
    for mean in rng.uniform(0.05, 0.9, size=10):
        ice = mean + 0.08 * ctf_truth.smooth_map(rng, (1024, 1024), 200.0)
        image = _micrograph(ctf_truth, rng, ice)
        result = estimate_ice_thickness(image, incident_e_per_px=DOSE, pixel_size_a=1.0)
        tiles = ice.reshape(8, 128, 8, 128).mean(axis=(1, 3)).ravel()
        expected = np.percentile(tiles, [0, 25, 50, 75, 100])
        got = [result.minimum, result.q1, result.median, result.q3, result.maximum]
        np.testing.assert_allclose(got, expected, atol=0.02)
        assert got == sorted(got)
        truth.append(float(np.median(ice)))
        found.append(result.median)
    assert spearmanr(truth, found).statistic >= 0.9


def test_sees_a_crystalline_ice_ring(ctf_truth: ModuleType) -> None:
    rng = np.random.default_rng(72)
    vitreous = _micrograph(ctf_truth, rng, 0.3)
    ky = np.fft.fftfreq(1024)[:, None]
    kx = np.fft.fftfreq(1024)[None, :]
    ring = np.abs(np.hypot(kx, ky) - 1 / 3.67) < 0.004
    spots = np.fft.ifft2(ring * np.exp(2j * np.pi * rng.random((1024, 1024)))).real
    crystalline = vitreous + (8.0 * spots / spots.std()).astype(np.float32)
    plain = estimate_ice_thickness(vitreous, incident_e_per_px=DOSE, pixel_size_a=1.0)
    ringed = estimate_ice_thickness(crystalline, incident_e_per_px=DOSE, pixel_size_a=1.0)
    assert plain.ice_ring_ratio == pytest.approx(1.0, abs=0.1)
    assert ringed.ice_ring_ratio is not None and ringed.ice_ring_ratio > 1.5
    coarse = estimate_ice_thickness(vitreous, incident_e_per_px=DOSE, pixel_size_a=2.0)
    assert coarse.ice_ring_ratio is None


def test_unusable_micrographs_raise_a_typed_error() -> None:
    rng = np.random.default_rng(73)
    good = rng.poisson(DOSE, (512, 512)).astype(np.float32)
    with_inf = good.copy()
    with_inf[3, 3] = np.inf
    saturated = good.copy()
    saturated[:20] = good.max()
    dark = good.copy()
    dark[:128, :128] = 0.0
    cases = {
        "non-finite": with_inf,
        "blank": np.zeros((512, 512), np.float32),
        "saturated": saturated,
        "no-electrons": dark,
    }
    for reason, image in cases.items():
        with pytest.raises(IceThicknessError) as caught:
            estimate_ice_thickness(image, incident_e_per_px=DOSE, pixel_size_a=1.0)
        assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"incident_e_per_px": 0.0}, "incident_e_per_px"),
        ({"pixel_size_a": -1.0}, "pixel_size_a"),
        ({"tiles_per_side": 0}, "tiles_per_side"),
        ({"tiles_per_side": 200}, "tiles_per_side"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict[str, float], name: str) -> None:
    image = np.random.default_rng(0).poisson(DOSE, (256, 256)).astype(np.float32)
    settings: dict[str, float] = {"incident_e_per_px": DOSE, "pixel_size_a": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        estimate_ice_thickness(image, **settings)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image"):
        estimate_ice_thickness(image[None], incident_e_per_px=DOSE, pixel_size_a=1.0)
