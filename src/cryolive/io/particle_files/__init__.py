"""Files of picking and extraction: coordinates (RELION STAR or JSON), particle stacks (.mrcs),
RELION 3.1 ``particles.star`` with optics groups, and the tables 2D classification reads back
(the overlay PNG is :mod:`cryolive.io.png`'s). The engines touch no files: they take and return
the arrays these functions read and write.
"""

from cryolive.io.particle_files._coords import read_coordinates, write_coordinates
from cryolive.io.particle_files._read_star import (
    ParticleStarError,
    read_particle_stars,
    read_particles_star,
)
from cryolive.io.particle_files._star import (
    MicrographParticles,
    OpticsGroup,
    write_particles_star,
    write_stack,
)
from cryolive.io.particle_files._star3d import (
    ParticleStarTables,
    read_particles_3d,
    write_particles_3d,
)
from cryolive.io.particle_files._tables import (
    ParticleTables,
    read_particle_tables,
    write_particle_tables,
)

__all__ = [
    "MicrographParticles",
    "OpticsGroup",
    "ParticleStarError",
    "ParticleStarTables",
    "ParticleTables",
    "read_coordinates",
    "read_particle_stars",
    "read_particle_tables",
    "read_particles_3d",
    "read_particles_star",
    "write_coordinates",
    "write_particle_tables",
    "write_particles_3d",
    "write_particles_star",
    "write_stack",
]
