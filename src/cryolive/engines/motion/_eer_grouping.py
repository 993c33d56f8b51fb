"""EER frame grouping chosen from the dose: each fraction of an EER movie holds 0.5-1.0 e/Å².

An EER movie (Falcon 4/4i) holds one detector frame per 1/248 s or so, hundreds to thousands
of them, each with a few hundredths of an electron per Å²: far too few counts to align. Motion
correction sums ``eer_grouping`` consecutive EER frames into one fraction. RELION's
documentation for EER movies (relion.readthedocs.io, Reference > Movie compression > Falcon4
EER) recommends groups of about 0.5-1 e/Å² per fraction (fewer counts do not align; more blur
the motion within a fraction). The watcher chooses the grouping with :func:`choose_eer_grouping`
from the total dose and the number of EER frames, read cheaply from the file's header
(:func:`cryolive.io.movies.movie_frame_count`), unless the user or a request set
``eer_grouping``.
"""

from __future__ import annotations

import math

TARGET_E_PER_A2 = 0.8
WINDOW_E_PER_A2 = (0.5, 1.0)


def choose_eer_grouping(
    n_eer_frames: int,
    total_dose_e_per_a2: float,
    *,
    target_e_per_a2: float = TARGET_E_PER_A2,
    window_e_per_a2: tuple[float, float] = WINDOW_E_PER_A2,
) -> int:
    """EER frames per fraction, so that each fraction holds a dose within the window.

    Among the groupings whose dose per fraction lies in ``window_e_per_a2``, the one that drops
    the fewest trailing EER frames (those that do not fill a last group) is chosen; among those,
    the one nearest ``target_e_per_a2``. When no grouping falls inside the window (a dose per
    EER frame above its top, or a movie holding less than its bottom in all), the grouping
    nearest the target is used (at least 1, at most all frames).

    Parameters
    ----------
    n_eer_frames : int
        EER frames in the movie.
    total_dose_e_per_a2 : float
        Dose over the whole movie, e/Å².
    target_e_per_a2 : float
        Preferred dose per fraction, e/Å² (default 0.8).
    window_e_per_a2 : (float, float)
        Accepted dose per fraction, e/Å² (default 0.5-1.0).

    Returns
    -------
    int
        EER frames per fraction.

    Raises
    ------
    ValueError
        A parameter out of range (the message names it).
    """
    if n_eer_frames < 1:
        raise ValueError(f"n_eer_frames: must be at least 1, got {n_eer_frames}")
    if not total_dose_e_per_a2 > 0:
        raise ValueError(f"total_dose_e_per_a2: must be positive, got {total_dose_e_per_a2}")
    low, high = window_e_per_a2
    if not 0 < low <= target_e_per_a2 <= high:
        raise ValueError(
            f"window_e_per_a2, target_e_per_a2: need 0 < low <= target <= high, got "
            f"{window_e_per_a2}, {target_e_per_a2}"
        )
    per_frame = total_dose_e_per_a2 / n_eer_frames
    first = max(1, math.ceil(low / per_frame - 1e-9))
    last = min(n_eer_frames, math.floor(high / per_frame + 1e-9))
    candidates = range(first, last + 1)
    if not candidates:
        nearest = round(target_e_per_a2 / per_frame)
        return min(n_eer_frames, max(1, nearest))
    return min(
        candidates,
        key=lambda g: (n_eer_frames % g, abs(g * per_frame - target_e_per_a2)),
    )
