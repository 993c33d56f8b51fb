"""The optics setting that makes movies of one raw folder one data collection.

Two movies share an optics setting when their pixel sizes differ by at most 1%, their voltages
by at most 0.5 kV, their detectors are the same and their frame counts differ by at most 1%.
Dose and defocus are not part of it: they are recorded and used per movie.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryolive.io import AcquisitionMetadata

PIXEL_SIZE_TOLERANCE = 0.01  # relative
FRAMES_TOLERANCE = 0.01  # relative
VOLTAGE_TOLERANCE_KV = 0.5
OPTICS_NOTE = "cryolive_optics"


@dataclass(frozen=True)
class Optics:
    """What makes movies one data collection. ``None`` (a collection registered before
    optics were recorded, or by hand) matches any value."""

    pixel_size_a: float
    voltage_kv: float
    detector: str | None = None
    frames: int | None = None

    @classmethod
    def of(cls, meta: AcquisitionMetadata) -> Optics:
        return cls(meta.pixel_size_a, meta.voltage_kv, meta.detector_name, meta.n_fractions)

    def matches(self, other: Optics) -> bool:
        def near(a: float | None, b: float | None, tolerance: float) -> bool:
            return a is None or b is None or abs(a - b) <= tolerance * max(abs(a), abs(b))

        return (
            near(self.pixel_size_a, other.pixel_size_a, PIXEL_SIZE_TOLERANCE)
            and abs(self.voltage_kv - other.voltage_kv) <= VOLTAGE_TOLERANCE_KV
            and (self.detector is None or other.detector is None or self.detector == other.detector)
            and near(self.frames, other.frames, FRAMES_TOLERANCE)
        )

    def key(self) -> str:
        return (
            f"{self.pixel_size_a:.4f}A {self.voltage_kv:.0f}kV "
            f"{self.detector or '-'} {self.frames or '-'}f"
        )

    def note(self) -> str:
        return json.dumps({OPTICS_NOTE: self.__dict__})

    @classmethod
    def from_row(cls, pixel: float | None, kv: float | None, comments: str | None) -> Optics | None:
        try:
            note = json.loads(comments or "")
        except ValueError:
            note = None
        if isinstance(note, dict) and isinstance(note.get(OPTICS_NOTE), dict):
            return cls(**note[OPTICS_NOTE])
        if pixel is None or kv is None:
            return None
        return cls(pixel, kv)  # the folder's first collection: detector and frames not recorded
