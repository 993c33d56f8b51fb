"""RELION 3.1.3 reads the particles live 3D gathers (the stack, its optics and CTF columns):
``relion_reconstruct`` makes a map of the box and pixel the rule chose."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cryolive.io.maps import read_map
from cryolive.io.outputs.recon3d import gather_particles
from cryolive.simulate import procedural_specimen, simulate_particles, write_simulated_particles


def test_relion_reconstructs_from_the_gathered_particles(
    tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    if shutil.which("relion_reconstruct") is None:
        need_service("relion_reconstruct", "not on PATH (make test installs relion)")
    stars = []
    for i in range(2):
        sim = simulate_particles(
            procedural_specimen(seed=1),
            n_particles=40,
            n_views=3,
            box_px=32,
            pixel_size_a=3.0,
            junk_fraction={},
            seed=i,
        )
        stars.append(write_simulated_particles(sim, tmp_path / f"mic{i}"))
    star, n, box = gather_particles(
        stars, tmp_path / "run", diameter_a=60.0, box_factor=1.2, max_pixel_a=3.75
    )
    assert (n, box.box_px) == (80, 20)
    done = subprocess.run(
        ["relion_reconstruct", "--i", star.name, "--o", "rec.mrc", "--ctf"],
        cwd=star.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    volume, voxel = read_map(star.parent / "rec.mrc")
    assert volume.shape == (20, 20, 20) and voxel == pytest.approx(3.6, abs=1e-3)
    assert float(abs(volume).max()) > 0
