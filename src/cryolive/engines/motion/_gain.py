"""Find how a gain reference is rotated/flipped with respect to the movies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.motion._errors import UnusableMovieError

Flip = Literal["none", "x", "y"]


@dataclass(frozen=True)
class GainTransform:
    """How the stored gain reference relates to the movies.

    Attributes
    ----------
    rotate_deg
        0, 90, 180 or 270: counter-clockwise rotation (``np.rot90``), applied first.
    flip
        ``"none"``, ``"x"`` (mirror left-right, ``np.fliplr``) or ``"y"`` (mirror up-down),
        applied after the rotation.
    """

    rotate_deg: int = 0
    flip: Flip = "none"

    def __post_init__(self) -> None:
        if self.rotate_deg not in (0, 90, 180, 270):
            raise ValueError(f"rotate_deg: must be 0, 90, 180 or 270, got {self.rotate_deg}")
        if self.flip not in ("none", "x", "y"):
            raise ValueError(f"flip: must be 'none', 'x' or 'y', got {self.flip!r}")

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Stored orientation -> movie orientation. ``image``: (y, x); dtype kept."""
        out = np.rot90(image, self.rotate_deg // 90)
        if self.flip == "x":
            out = out[:, ::-1]
        elif self.flip == "y":
            out = out[::-1, :]
        return np.ascontiguousarray(out)

    def invert(self, image: np.ndarray) -> np.ndarray:
        """Movie orientation -> stored orientation (the inverse of :meth:`apply`)."""
        out = image
        if self.flip == "x":
            out = out[:, ::-1]
        elif self.flip == "y":
            out = out[::-1, :]
        return np.ascontiguousarray(np.rot90(out, -(self.rotate_deg // 90)))

    @classmethod
    def all(cls) -> list[GainTransform]:
        """The 8 distinct rotations/flips (the dihedral group of the square)."""
        return [cls(r, f) for r in (0, 90, 180, 270) for f in ("none", "x")]


_SMOOTH_PX = 9


@dataclass(frozen=True)
class GainOrientation:
    """The orientation that makes the gain reference match the movies.

    Attributes
    ----------
    transform : GainTransform
        Apply to the gain as stored to get the gain of the movies.
    correlations : dict[str, float]
        Correlation of the movies' per-pixel pattern with each candidate's expected pattern.
    separation_sigma : float
        (best - second best correlation) in units of the correlation's noise, 1/sqrt(pixels):
        above about 10 the answer is certain, below 3 it is a guess.
    """

    transform: GainTransform
    correlations: dict[str, float]
    separation_sigma: float

    @property
    def confident(self) -> bool:
        return self.separation_sigma >= 10.0

    def describe(self) -> str:
        """One sentence for a person."""
        best = self.correlations[_name(self.transform)]
        others = sorted((v for k, v in self.correlations.items() if k != _name(self.transform)))
        runner = others[-1] if others else float("nan")
        return (
            f"gain reference orientation: {_name(self.transform)} (correlation {best:.3f}, "
            f"next best {runner:.3f}, separation {self.separation_sigma:.0f} sigma; "
            f"{'confident' if self.confident else 'NOT confident'})"
        )


def _name(transform: GainTransform) -> str:
    return f"rotate {transform.rotate_deg} deg, flip {transform.flip}"


def _box_mean(image: NDArray[np.float32], size: int) -> NDArray[np.float64]:
    """Mean over a ``size`` x ``size`` box (odd) around each pixel, edges mirrored about the
    half pixel (d c b a | a b c d): ``scipy.ndimage.uniform_filter(mode="reflect")``, written
    here so that a small ``cryolive motioncorr`` job does not import scipy."""
    half = size // 2
    ny, nx = image.shape
    padded = np.pad(np.asarray(image, dtype=np.float64), ((half, half), (0, 0)), "symmetric")
    rows = padded[:ny].copy()  # sums of `size` rows, then of `size` columns of those
    for shift in range(1, size):
        rows += padded[shift : shift + ny]
    padded = np.pad(rows, ((0, 0), (half, half)), "symmetric")
    total = padded[:, :nx].copy()
    for shift in range(1, size):
        total += padded[:, shift : shift + nx]
    out: NDArray[np.float64] = total / (size * size)
    return out


def _highpass(image: NDArray[np.float32]) -> NDArray[np.float32]:
    smooth = _box_mean(image, _SMOOTH_PX)
    out = image - smooth
    out -= out.mean()
    return np.asarray(out, dtype=np.float32)


def detect_gain_orientation(
    raw_sum: NDArray[np.floating], gain_as_stored: NDArray[np.floating]
) -> GainOrientation:
    """Which of the 8 rotations/flips of the gain reference matches the movies.

    The raw counts of a movie are the exposure times the pixels' efficiency, 1/gain. After a
    high-pass that removes the specimen, the summed raw frames correlate with 1/gain of the
    right orientation and not with the others.

    Parameters
    ----------
    raw_sum : (y, x) float
        Raw (not gain-corrected) frames summed over one or more movies of the collection; the
        more counts, the surer the answer.
    gain_as_stored : (y, x) or (x, y) float
        The gain reference as read from its file (multiplicative gain).

    Returns
    -------
    GainOrientation
    """
    raw = np.asarray(raw_sum, dtype=np.float32)
    gain = np.asarray(gain_as_stored, dtype=np.float32)
    if raw.ndim != 2 or gain.ndim != 2:
        raise ValueError("raw_sum, gain_as_stored: both must be 2D images")
    if sorted(raw.shape) != sorted(gain.shape):
        raise UnusableMovieError(
            "gain-shape",
            f"gain_as_stored: shape {gain.shape} fits no orientation of frames {raw.shape}",
        )
    if not np.all(np.isfinite(gain)) or np.any(gain <= 0):
        raise UnusableMovieError("gain", "gain_as_stored: must be finite and positive everywhere")
    pattern = _highpass(raw)
    pattern /= np.float32(np.linalg.norm(pattern) or 1.0)
    efficiency = _highpass((1.0 / gain).astype(np.float32))
    efficiency /= np.float32(np.linalg.norm(efficiency) or 1.0)
    correlations: dict[str, float] = {}
    candidates = {}
    for transform in GainTransform.all():
        oriented = transform.apply(efficiency)
        if oriented.shape != raw.shape:
            continue
        correlations[_name(transform)] = float(np.vdot(pattern, oriented))
        candidates[_name(transform)] = transform
    ranked = sorted(correlations, key=correlations.__getitem__, reverse=True)
    gap = correlations[ranked[0]] - (correlations[ranked[1]] if len(ranked) > 1 else 0.0)
    return GainOrientation(
        transform=candidates[ranked[0]],
        correlations=correlations,
        separation_sigma=float(gap * np.sqrt(raw.size)),
    )
