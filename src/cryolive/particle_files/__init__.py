"""Files of picking and extraction: coordinates (RELION STAR or JSON), particle stacks (.mrcs),
RELION 3.1 ``particles.star`` with optics groups (the overlay PNG is :mod:`cryolive.io.png`'s).

Kept apart from :mod:`cryolive.io` (owned by the readers of microscope files) and from the
engines (which touch no files).
"""

from cryolive.particle_files._coords import read_coordinates, write_coordinates
from cryolive.particle_files._read_star import (
    ParticleStarError,
    read_particle_stars,
    read_particles_star,
)
from cryolive.particle_files._star import (
    MicrographParticles,
    OpticsGroup,
    write_particles_star,
    write_stack,
)
from cryolive.particle_files._tables import (
    ParticleTables,
    read_particle_tables,
    write_particle_tables,
)

__all__ = [
    "MicrographParticles",
    "OpticsGroup",
    "ParticleStarError",
    "ParticleTables",
    "read_coordinates",
    "read_particle_stars",
    "read_particle_tables",
    "read_particles_star",
    "write_coordinates",
    "write_particle_tables",
    "write_particles_star",
    "write_stack",
]
