"""Simulated data collections with known ground truth (the input of the daily check).

``simulate_visit(VisitConfig(...), out_dir)`` writes movies, metadata and a gain reference in
the layout a microscope writes, at a chosen rate, and ``truth.json`` with everything planted.
"""

from cryolive.simulate._config import (
    DETECTORS,
    Detector,
    FaultRates,
    MovieConfig,
    SpecimenSpec,
    VisitConfig,
)
from cryolive.simulate._optics import ctf_2d, electron_wavelength_a
from cryolive.simulate._orient import euler_zyz_matrix, random_orientations
from cryolive.simulate._render import ExposurePlan, ExposureRenderer, plan_exposure
from cryolive.simulate._specimen import (
    Specimen,
    procedural_specimen,
    specimen_from_map,
    specimen_from_model,
)
from cryolive.simulate._truth import VisitTruth
from cryolive.simulate._visit import simulate_visit

__all__ = [
    "DETECTORS",
    "Detector",
    "ExposurePlan",
    "ExposureRenderer",
    "FaultRates",
    "MovieConfig",
    "Specimen",
    "SpecimenSpec",
    "VisitConfig",
    "VisitTruth",
    "ctf_2d",
    "electron_wavelength_a",
    "euler_zyz_matrix",
    "plan_exposure",
    "procedural_specimen",
    "random_orientations",
    "simulate_visit",
    "specimen_from_map",
    "specimen_from_model",
]
