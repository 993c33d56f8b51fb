"""CTF engine: planted defocus, astigmatism and phase shift are recovered within stated
tolerances; unusable micrographs and bad parameters give clear errors."""

from __future__ import annotations

import json
import math
from types import ModuleType

import numpy as np
import pytest

from cryolive.engines.ctf import (
    CtfFitError,
    CtfSearch,
    Optics,
    ctf_2d,
    electron_wavelength_a,
    estimate_ctf,
)

PIXEL_A = 2.0
OPTICS = Optics(pixel_size_a=PIXEL_A)
SEARCH = CtfSearch(box_px=256)


def _angle_error(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def test_wavelength_matches_published_values() -> None:
    # 300 kV: 0.019687 Å, 200 kV: 0.025079 Å (relativistic electron wavelength).
    assert electron_wavelength_a(300.0) == pytest.approx(0.019687, abs=2e-6)
    assert electron_wavelength_a(200.0) == pytest.approx(0.025079, abs=2e-6)


def test_ctf_2d_agrees_with_an_independent_formula(ctf_truth: ModuleType) -> None:
    kwargs = dict(defocus_u_a=12000.0, defocus_v_a=11000.0, phase_shift_deg=40.0)
    ours = ctf_2d((64, 96), optics=OPTICS, astigmatism_angle_deg=35.0, **kwargs)
    theirs = ctf_truth.planted_ctf(
        (64, 96),
        pixel_size_a=PIXEL_A,
        voltage_kv=300.0,
        cs_mm=2.7,
        amplitude_contrast=0.07,
        angle_deg=35.0,
        **kwargs,
    )
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=2e-4)


def test_ctf_2d_first_zero_lies_where_theory_puts_it() -> None:
    # Without Cs, amplitude contrast or phase shift, χ = π λ Δf k², so the first zero
    # after the origin is at k = 1 / sqrt(λ Δf) along the U axis (angle 0: +x).
    optics = Optics(pixel_size_a=1.0, cs_mm=0.0, amplitude_contrast=0.0)
    ctf = ctf_2d((1, 4096), optics=optics, defocus_u_a=20000.0, defocus_v_a=10000.0)[0]
    k = np.fft.fftfreq(4096, 1.0)
    first = 1 / math.sqrt(electron_wavelength_a(300.0) * 20000.0)
    near = np.abs(k - first) < 0.002
    assert k[near][np.argmin(np.abs(ctf[near]))] == pytest.approx(first, abs=1 / 4096)


def test_recovers_defocus_and_astigmatism_over_a_spread(ctf_truth: ModuleType) -> None:
    # Issue 6: median |Δ defocus| <= 0.5 % of defocus; angle within 5° where astigmatism
    # >= 200 Å. Defocus 0.5-3.5 µm, astigmatism 0-1000 Å, dose 20-80 e/px.
    rng = np.random.default_rng(61)
    relative, angles = [], []
    cases = [
        (5000, 0, 20.0),
        (9000, 250, 80.0),
        (14000, 1000, 40.0),
        (19000, 600, 20.0),
        (24000, 400, 80.0),
        (30000, 800, 40.0),
        (35000, 150, 40.0),
    ]
    for u, astig, dose in cases:
        angle = rng.uniform(0, 180)
        image = ctf_truth.micrograph(
            rng,
            defocus_u_a=u,
            defocus_v_a=u - astig,
            angle_deg=angle,
            dose_e_per_px=dose,
            contrast=0.08,
        )
        r = estimate_ctf(image, optics=OPTICS, search=SEARCH).result
        truth = u - astig / 2
        relative.append(abs(r.defocus_a - truth) / truth)
        assert r.defocus_u_a >= r.defocus_v_a
        assert r.astigmatism_a == pytest.approx(astig, abs=150)
        if astig >= 200:
            angles.append(_angle_error(r.astigmatism_angle_deg, angle))
        assert 0 < r.cc <= 1
    assert float(np.median(relative)) <= 0.005
    assert max(angles) <= 5.0


@pytest.mark.parametrize("dtype", [np.float64, np.uint16])
def test_other_dtypes_give_the_float32_answer(ctf_truth: ModuleType, dtype: type) -> None:
    image = ctf_truth.micrograph(
        np.random.default_rng(60), defocus_u_a=13000.0, defocus_v_a=12400.0, angle_deg=75.0
    )
    assert image.dtype == np.float32
    reference = estimate_ctf(image, optics=OPTICS, search=SEARCH).result
    other = estimate_ctf(image.astype(dtype), optics=OPTICS, search=SEARCH).result
    assert other.defocus_u_a == pytest.approx(reference.defocus_u_a, abs=1.0)
    assert other.defocus_v_a == pytest.approx(reference.defocus_v_a, abs=1.0)
    assert other.astigmatism_angle_deg == pytest.approx(reference.astigmatism_angle_deg, abs=0.5)


def test_recovers_phase_shift_when_fitted(ctf_truth: ModuleType) -> None:
    rng = np.random.default_rng(62)
    search = CtfSearch(box_px=256, fit_phase_shift=True)
    for phase, u in [(30.0, 11000.0), (90.0, 22000.0), (140.0, 8000.0), (176.0, 15000.0)]:
        image = ctf_truth.micrograph(
            rng, defocus_u_a=u, defocus_v_a=u - 300, angle_deg=60.0, phase_shift_deg=phase
        )
        r = estimate_ctf(image, optics=OPTICS, search=search).result
        # Only modulo 180° can a power spectrum tell the phase shift.
        assert _angle_error(r.phase_shift_deg, phase) <= 10.0
        assert 0.0 <= r.phase_shift_deg < 180.0
        assert r.defocus_a == pytest.approx(u - 150, rel=0.005)


def test_the_defocus_range_is_a_prior(ctf_truth: ModuleType) -> None:
    # Planted 20000 Å; a range that excludes it cannot return it, one that includes it does.
    image = ctf_truth.micrograph(
        np.random.default_rng(63), defocus_u_a=20000.0, defocus_v_a=20000.0
    )
    inside = estimate_ctf(
        image, optics=OPTICS, search=CtfSearch(box_px=256, min_defocus_a=15000, max_defocus_a=25000)
    ).result
    assert inside.defocus_a == pytest.approx(20000, rel=0.005)
    try:
        outside = estimate_ctf(
            image, optics=OPTICS, search=CtfSearch(box_px=256, max_defocus_a=12000)
        ).result
    except CtfFitError:
        return
    assert outside.defocus_u_a <= 12000 + 1


def test_automatic_box_keeps_rings_resolved_at_small_pixels(ctf_truth: ModuleType) -> None:
    # 0.7 Å/px: a 512 px box would span 358 Å; the automatic one spans ~512 Å (736 px), but
    # shrinks to leave 2 x 2 tiles in a small image.
    assert CtfSearch().box_for(0.7) == 736
    assert CtfSearch().box_for(0.7, (1024, 1024)) == 512
    assert CtfSearch().box_for(2.0, (1024, 1024)) == 256
    assert CtfSearch(box_px=300).box_for(0.7) == 300
    rng = np.random.default_rng(67)
    image = ctf_truth.micrograph(
        rng, shape=(2304, 2304), pixel_size_a=0.7, defocus_u_a=30000.0, defocus_v_a=29500.0
    )
    r = estimate_ctf(image, optics=Optics(pixel_size_a=0.7)).result
    assert r.box_px == 736
    assert r.defocus_a == pytest.approx(29750.0, rel=0.005)


def test_fit_resolution_follows_the_envelope(ctf_truth: ModuleType) -> None:
    rng = np.random.default_rng(64)
    sharp = ctf_truth.micrograph(rng, defocus_u_a=12000.0, defocus_v_a=12000.0, bfactor_a2=20)
    blurred = ctf_truth.micrograph(rng, defocus_u_a=12000.0, defocus_v_a=12000.0, bfactor_a2=600)
    res_sharp = estimate_ctf(sharp, optics=OPTICS, search=SEARCH).result.fit_resolution_a
    res_blurred = estimate_ctf(blurred, optics=OPTICS, search=SEARCH).result.fit_resolution_a
    assert res_sharp <= 5.0
    assert res_blurred >= res_sharp + 1.0


def test_diagnostic_and_curves_show_the_fit(ctf_truth: ModuleType) -> None:
    image = ctf_truth.micrograph(
        np.random.default_rng(65), defocus_u_a=16000.0, defocus_v_a=15200.0, angle_deg=20.0
    )
    fit = estimate_ctf(image, optics=OPTICS, search=SEARCH)
    diag = fit.diagnostic
    assert diag.shape == (256, 256) and diag.dtype == np.float32
    assert diag.min() >= 0.0 and diag.max() <= 1.0
    # The spectrum is centrosymmetric: the data at (y, x) on the left face the model at
    # (-y, -x) on the right; they must agree.
    data = diag[1:, 1:128]
    model = diag[1:, 129:][::-1, ::-1]
    assert np.corrcoef(data.ravel(), model.ravel())[0, 1] > 0.3
    curves = json.loads(json.dumps(fit.curves.to_dict()))
    n = len(curves["frequency_per_a"])
    assert n > 50 and all(len(v) == n for v in curves.values())
    freq = np.array(curves["frequency_per_a"])
    band = (freq > 1 / 20) & (freq < 1 / 6)
    assert np.corrcoef(np.array(curves["data"])[band], np.array(curves["fit"])[band])[0, 1] > 0.8
    assert json.loads(json.dumps(fit.result.to_dict()))["defocus_a"] == pytest.approx(
        15600, rel=0.005
    )


def test_unusable_micrographs_raise_a_typed_error(ctf_truth: ModuleType) -> None:
    rng = np.random.default_rng(66)
    good = ctf_truth.micrograph(rng, defocus_u_a=10000.0, defocus_v_a=10000.0)
    with_nan = good.copy()
    with_nan[5, 7] = np.nan
    saturated = good.copy()
    saturated[:100] = good.max()
    cases = {
        "non-finite": with_nan,
        "blank": np.full((1024, 1024), 3.0, np.float32),
        "saturated": saturated,
    }
    for reason, image in cases.items():
        with pytest.raises(CtfFitError) as caught:
            estimate_ctf(image, optics=OPTICS, search=SEARCH)
        assert caught.value.reason == reason
    for seed in range(3):
        noise = np.random.default_rng(seed).poisson(40.0, (1024, 1024)).astype(np.float32)
        with pytest.raises(CtfFitError) as caught:
            estimate_ctf(noise, optics=OPTICS, search=SEARCH)
        assert caught.value.reason == "no-thon-rings"


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: estimate_ctf(np.zeros((2, 64, 64)), optics=OPTICS), "image"),
        (lambda: estimate_ctf(np.ones((1024, 1024)), optics=Optics(pixel_size_a=3.0)), "max_res_a"),
        (
            lambda: estimate_ctf(np.ones((300, 300)), optics=OPTICS, search=CtfSearch(box_px=512)),
            "box_px",
        ),
        (lambda: CtfSearch(box_px=63), "box_px"),
        (lambda: CtfSearch(min_res_a=4.0, max_res_a=5.0), "min_res_a"),
        (lambda: CtfSearch(min_defocus_a=9000, max_defocus_a=8000), "max_defocus_a"),
        (lambda: CtfSearch(max_astigmatism_a=-1), "max_astigmatism_a"),
        (lambda: Optics(pixel_size_a=0), "pixel_size_a"),
        (lambda: Optics(amplitude_contrast=1.0), "amplitude_contrast"),
        (lambda: electron_wavelength_a(-5), "voltage_kv"),
    ],
)
def test_bad_parameters_name_themselves(make: object, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()  # type: ignore[operator]
