"""Greyscale image scaling for the motion-correction previews (the PNG encoder is
:mod:`cryolive.io.png`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def to_uint8(
    image: NDArray[np.floating], *, low_pct: float = 1.0, high_pct: float = 99.0
) -> NDArray[np.uint8]:
    """Map ``image`` linearly so its ``low_pct``/``high_pct`` percentiles are black/white."""
    low, high = np.percentile(image, [low_pct, high_pct])
    scaled = (np.asarray(image, dtype=np.float32) - low) / max(float(high - low), 1e-12)
    return np.asarray(np.clip(scaled * 255.0 + 0.5, 0, 255), dtype=np.uint8)
