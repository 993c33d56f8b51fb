"""3D reconstruction's common parts: RELION's Euler angles, central-slice projection and
reconstruction (padded, trilinear, gridding-corrected), the particles' CTF as RELION applies
it, Fourier shell correlation, and test maps. Pure NumPy/SciPy.

Conventions (RELION 3.1's): volumes indexed [z, y, x] and centred at box//2; Euler angles rot,
tilt, psi in degrees (ZYZ); particles white; CTF positive at low frequency for underfocus;
an image equals its map's projection moved by its origin (``origins_a`` / pixel), which is
*minus* RELION's ``rlnOriginX/YAngst`` (io turns the sign when it reads and writes STAR files).
"""

from cryolive.engines.recon3d._ctf import particle_ctf
from cryolive.engines.recon3d._euler import (
    angular_distance_deg,
    euler_to_matrix,
    matrix_to_euler,
    orientation_grid,
    random_rotations,
)
from cryolive.engines.recon3d._fourier import (
    Projector,
    Reconstructor,
    frequency_grid,
    fsc,
    image_transforms,
    images_from_transforms,
    resolution_at,
    shell_index,
    shell_resolution_a,
    shift_phases,
)
from cryolive.engines.recon3d._phantom import phantom, project_real, rotate_volume
from cryolive.engines.recon3d._types import ParticleStack3D

__all__ = [
    "ParticleStack3D",
    "Projector",
    "Reconstructor",
    "angular_distance_deg",
    "euler_to_matrix",
    "frequency_grid",
    "fsc",
    "image_transforms",
    "images_from_transforms",
    "matrix_to_euler",
    "orientation_grid",
    "particle_ctf",
    "phantom",
    "project_real",
    "random_rotations",
    "resolution_at",
    "rotate_volume",
    "shell_index",
    "shell_resolution_a",
    "shift_phases",
]
