"""Simulated data collections with known ground truth (the input of the daily check).

``simulate_visit(VisitConfig(...), out_dir)`` writes movies, metadata and a gain reference in
the layout a microscope writes, at a chosen rate, and ``truth.json`` with everything planted.
"""

from cryolive.simulate._config import (
    DETECTORS,
    MOVIE_PRESETS,
    Detector,
    FaultRates,
    MovieConfig,
    SpecimenSpec,
    VisitConfig,
)
from cryolive.simulate._optics import ctf_2d, electron_wavelength_a
from cryolive.simulate._orient import euler_zyz_matrix, random_orientations
from cryolive.simulate._particle_files import read_particle_truth, write_simulated_particles
from cryolive.simulate._particles import ParticleTruth, SimulatedParticles, simulate_particles
from cryolive.simulate._render import ExposurePlan, ExposureRenderer, plan_exposure
from cryolive.simulate._specimen import (
    Specimen,
    procedural_specimen,
    specimen_from_map,
    specimen_from_model,
)
from cryolive.simulate._truth import VisitTruth
from cryolive.simulate._visit import simulate_visit, write_truth_map

__all__ = [
    "DETECTORS",
    "MOVIE_PRESETS",
    "Detector",
    "ExposurePlan",
    "ExposureRenderer",
    "FaultRates",
    "MovieConfig",
    "ParticleTruth",
    "SimulatedParticles",
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
    "read_particle_truth",
    "simulate_particles",
    "simulate_visit",
    "specimen_from_map",
    "specimen_from_model",
    "write_simulated_particles",
    "write_truth_map",
]
