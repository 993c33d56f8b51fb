"""What 2D classification takes and gives: particles with their CTF, settings, a result."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, kw_only=True)
class ParticleSet:
    """Particle images and the CTF of the micrograph each came from.

    Attributes
    ----------
    images : (n, b, b) float32
        Boxes as extraction writes them: protein bright (contrast inverted), background zero
        mean and unit sd, not CTF-corrected.
    pixel_size_a : float
        Pixel size of ``images``, Å.
    defocus_u_a, defocus_v_a, astigmatism_angle_deg : (n,) float
        Each particle's CTF (Å; degrees from +x towards +y; positive is underfocus).
    voltage_kv, cs_mm, amplitude_contrast : float
        Optics shared by all particles.
    """

    images: NDArray[np.float32]
    pixel_size_a: float
    defocus_u_a: NDArray[np.float64]
    defocus_v_a: NDArray[np.float64]
    astigmatism_angle_deg: NDArray[np.float64]
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"images: must be (n, b, b), got {self.images.shape}")
        n = self.images.shape[0]
        for name in ("defocus_u_a", "defocus_v_a", "astigmatism_angle_deg"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"{name}: must hold one value per particle ({n})")
        if not self.pixel_size_a > 0:
            raise ValueError(f"pixel_size_a: must be positive, got {self.pixel_size_a}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def box_px(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: NDArray[np.integer] | slice) -> ParticleSet:
        """The particles at ``index``, same optics."""
        return ParticleSet(
            images=self.images[index],
            pixel_size_a=self.pixel_size_a,
            defocus_u_a=self.defocus_u_a[index],
            defocus_v_a=self.defocus_v_a[index],
            astigmatism_angle_deg=self.astigmatism_angle_deg[index],
            voltage_kv=self.voltage_kv,
            cs_mm=self.cs_mm,
            amplitude_contrast=self.amplitude_contrast,
        )


@dataclass(frozen=True, kw_only=True)
class Class2DSettings:
    """How to classify.

    Attributes
    ----------
    n_classes : int
        Number of classes K.
    particle_diameter_a : float
        Diameter of the circular mask applied to particles and class averages, Å.
    iterations : int
        Passes of expectation-maximisation (over mini-batches, then the whole set).
    angle_step_deg : float
        In-plane rotation sampling at the end; coarser early on.
    max_shift_a : float
        Largest translation searched from a particle's centre, Å.
    working_resolution_a : float | None
        Finest resolution used for alignment, Å (sets the working pixel size); None: twice
        the box's Nyquist at a working box of at most 64 pixels.
    seed : int
        Makes initial classes (and mini-batches) reproducible.
    batch_per_class : int
        Particles per class in each mini-batch iteration (all particles when there are fewer).
    full_iterations : int
        Last iterations that use every particle and refine poses locally.
    min_class_particles : int
        A class with fewer particles is never selected, whatever its score.
    """

    n_classes: int = 50
    particle_diameter_a: float = 150.0
    iterations: int = 20
    angle_step_deg: float = 6.0
    max_shift_a: float = 10.0
    working_resolution_a: float | None = None
    seed: int = 0
    batch_per_class: int = 200
    full_iterations: int = 2
    min_class_particles: int = 10

    def __post_init__(self) -> None:
        if self.n_classes < 1:
            raise ValueError(f"n_classes: must be at least 1, got {self.n_classes}")
        if not self.particle_diameter_a > 0:
            raise ValueError("particle_diameter_a: must be positive")
        if self.iterations < 1:
            raise ValueError(f"iterations: must be at least 1, got {self.iterations}")
        if not 0 < self.angle_step_deg <= 90:
            raise ValueError("angle_step_deg: must lie in (0, 90]")
        if not self.max_shift_a >= 0:
            raise ValueError("max_shift_a: must be >= 0")
        if self.batch_per_class < 1:
            raise ValueError("batch_per_class: must be at least 1")
        if not 1 <= self.full_iterations <= self.iterations:
            raise ValueError("full_iterations: must lie in [1, iterations]")
        if self.min_class_particles < 1:
            raise ValueError("min_class_particles: must be at least 1")


@dataclass(frozen=True, kw_only=True)
class Class2DResult:
    """Classes and each particle's place in them.

    Attributes
    ----------
    averages : (k, b, b) float32
        CTF-corrected class averages (protein bright) at ``pixel_size_a``.
    pixel_size_a : float
        Pixel size of ``averages`` (the working pixel size; coarser than the particles').
    assignment : (n,) int
        Class of each particle.
    psi_deg : (n,) float
        In-plane rotation that turns the class average onto the particle, degrees.
    shift_a : (n, 2) float
        Offset (y, x) of the particle's centre from its box's centre, Å.
    probability : (n,) float
        Posterior probability of the assigned class.
    particles_per_class : (k,) int
    resolution_a : (k,) float
        FRC 0.143 between averages of two half-sets of each class, Å (inf: too few particles).
    score : (k,) float
        In [0, 1]: how much a class looks like good particles (centred, compact, resolved).
    selected : (k,) bool
        Classes kept for further processing (score at or above the threshold and at least
        ``min_class_particles`` particles).
    engine : str
        "cryolive" or "relion_refine".
    iterations : int
        Iterations that ran.
    selection : str
        The selection rule and each selected class with its score, in words.
    """

    averages: NDArray[np.float32]
    pixel_size_a: float
    assignment: NDArray[np.int64]
    psi_deg: NDArray[np.float64]
    shift_a: NDArray[np.float64]
    probability: NDArray[np.float64]
    particles_per_class: NDArray[np.int64]
    resolution_a: NDArray[np.float64]
    score: NDArray[np.float64]
    selected: NDArray[np.bool_]
    engine: str = "cryolive"
    iterations: int = 0
    log: list[str] = field(default_factory=list)
    selection: str = ""

    @property
    def n_classes(self) -> int:
        return int(self.averages.shape[0])

    @property
    def class_distribution(self) -> NDArray[np.float64]:
        """Fraction of particles in each class."""
        total = max(1, int(self.particles_per_class.sum()))
        return self.particles_per_class / total
