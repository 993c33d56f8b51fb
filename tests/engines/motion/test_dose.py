"""Critical exposure (Grant & Grigorieff 2015) and the exposure filters."""

from __future__ import annotations

import numpy as np
import pytest

from cryolive.engines.motion import critical_exposure_e_per_a2, exposure_filters


def test_critical_exposure_matches_the_published_curve() -> None:
    # N_e(k) = 0.245 k^-1.665 + 2.81: at 1/10 1/Å 14.14 e/Å², at 1/3 1/Å 4.34 e/Å².
    values = critical_exposure_e_per_a2(np.array([0.1, 1 / 3]))
    np.testing.assert_allclose(values, [14.138, 4.336], rtol=1e-3)
    at_200 = critical_exposure_e_per_a2(np.array([0.1]), voltage_kv=200.0)
    np.testing.assert_allclose(at_200, 0.8 * values[:1], rtol=1e-6)
    assert values.dtype == np.float32


def test_unknown_voltage_is_refused() -> None:
    with pytest.raises(ValueError, match="voltage_kv"):
        critical_exposure_e_per_a2(np.array([0.1]), voltage_kv=120.0)


def test_filters_decay_with_exposure_and_frequency_and_keep_white_noise_power() -> None:
    k = np.array([0.0, 0.05, 0.2, 0.45])
    q, norm = exposure_filters(k, n_frames=40, dose_per_frame_e_per_a2=1.0)
    assert q.shape == (40, 4)
    assert np.all(np.diff(q, axis=0) < 0)  # later frames are more damaged
    assert np.all(np.diff(q[-1]) < 0)  # higher frequencies are more damaged
    # Frame 20 (20.5 e/Å²) at 0.2 1/Å: exp(-20.5 / (2 N_e(0.2))).
    ne = 0.245 * 0.2**-1.665 + 2.81
    np.testing.assert_allclose(q[20, 2], np.exp(-20.5 / (2 * ne)), rtol=1e-5)
    # White noise of unit power per frame: the weighted sum keeps the plain sum's power (n).
    np.testing.assert_allclose(((q * norm) ** 2).sum(axis=0), 40.0, rtol=1e-5)


def test_filters_refuse_bad_parameters() -> None:
    with pytest.raises(ValueError, match="dose_per_frame_e_per_a2"):
        exposure_filters(np.array([0.1]), n_frames=4, dose_per_frame_e_per_a2=0.0)
    with pytest.raises(ValueError, match="n_frames"):
        exposure_filters(np.array([0.1]), n_frames=0, dose_per_frame_e_per_a2=1.0)
