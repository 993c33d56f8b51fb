"""Picks against known positions: precision, recall and F1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True, kw_only=True)
class PickScore:
    """How picks compare with the truth: counts and the three ratios (0 when undefined)."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        picked = self.true_positives + self.false_positives
        return self.true_positives / picked if picked else 0.0

    @property
    def recall(self) -> float:
        present = self.true_positives + self.false_negatives
        return self.true_positives / present if present else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_picks(
    picks_xy_px: NDArray[np.floating],
    truth_xy_px: NDArray[np.floating],
    *,
    max_distance_px: float,
) -> PickScore:
    """Match picks to true positions one to one, each pair at most ``max_distance_px`` apart.

    The matching maximises the number of pairs and, among those, minimises the total distance
    (an optimal assignment), so two picks on one particle count once.

    Parameters
    ----------
    picks_xy_px, truth_xy_px : (n, 2), (m, 2) float
        Positions (x, y) in pixels of the same micrograph.
    max_distance_px : float
        Largest distance at which a pick counts (issue 7: half a particle diameter).
    """
    picks = np.asarray(picks_xy_px, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth_xy_px, dtype=np.float64).reshape(-1, 2)
    if not max_distance_px > 0:
        raise ValueError(f"max_distance_px: must be positive, got {max_distance_px}")
    if picks.shape[0] == 0 or truth.shape[0] == 0:
        return PickScore(
            true_positives=0, false_positives=picks.shape[0], false_negatives=truth.shape[0]
        )
    distance = np.hypot(
        picks[:, None, 0] - truth[None, :, 0], picks[:, None, 1] - truth[None, :, 1]
    )
    far = 1e3 * (max_distance_px + 1.0)  # an unmatched pair costs more than any match
    cost = np.where(distance <= max_distance_px, distance, far)
    rows, cols = linear_sum_assignment(cost)
    matched = int(np.count_nonzero(cost[rows, cols] < far))
    return PickScore(
        true_positives=matched,
        false_positives=picks.shape[0] - matched,
        false_negatives=truth.shape[0] - matched,
    )
