"""EER frame grouping from the dose (issue 9): each fraction holds 0.5-1.0 e/Å² where any
grouping can, dropping the fewest trailing EER frames, then nearest 0.8 e/Å²."""

from __future__ import annotations

import pytest

from cryolive.engines.motion import choose_eer_grouping


@pytest.mark.parametrize(
    ("n_eer", "dose", "expected"),
    [
        (160, 40.0, 4),  # 0.25 e/Å² per EER frame: 2 and 4 drop nothing, 4 (1.0) is nearer 0.8
        (800, 40.0, 16),  # 0.05: 10-20 fit, 10, 16 and 20 divide 800, 16 gives 0.8
        (1000, 50.0, 20),  # 0.05: 10-20 fit, 10 and 20 divide 1000, 1.0 is nearer 0.8
        (1200, 40.0, 24),  # 1/30: 15-30; 15, 16, 20, 24, 25, 30 divide; 24 gives 0.8
        (997, 40.0, 14),  # prime: 13-24 fit; 14 drops the fewest (3) trailing frames
        (50, 80.0, 1),  # 1.6 e/Å² per EER frame: nothing fits, one frame per fraction
        (10, 0.3, 10),  # 0.3 e/Å² in all: nothing fits, the whole movie in one fraction
    ],
)
def test_grouping_puts_half_to_one_electron_per_square_angstrom_in_a_fraction(
    n_eer: int, dose: float, expected: int
) -> None:
    group = choose_eer_grouping(n_eer, dose)
    assert group == expected
    per_fraction = dose * group / n_eer
    fits = any(0.5 <= dose * g / n_eer <= 1.0 for g in range(1, n_eer + 1))
    assert (0.5 <= per_fraction <= 1.0) == fits


def test_grouping_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_eer_frames"):
        choose_eer_grouping(0, 40.0)
    with pytest.raises(ValueError, match="total_dose_e_per_a2"):
        choose_eer_grouping(100, 0.0)
    with pytest.raises(ValueError, match="window_e_per_a2"):
        choose_eer_grouping(100, 40.0, target_e_per_a2=2.0)
