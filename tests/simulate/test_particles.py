"""Simulated particles of known views: the image convention of extraction, truth, junk, files."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.engines.ctf import Optics, ctf_2d
from cryolive.io.particle_files import read_particles_star
from cryolive.simulate import (
    procedural_specimen,
    read_particle_truth,
    simulate_particles,
    write_simulated_particles,
)

SPECIMEN = procedural_specimen(seed=1)


def _unturn(image: np.ndarray, psi_deg: float) -> np.ndarray:
    """Undo an in-plane turn by psi (x = axis 1 towards y = axis 0) about pixel b//2."""
    b = image.shape[-1]
    yy, xx = np.mgrid[0:b, 0:b].astype(np.float64) - b // 2
    c, s = np.cos(np.deg2rad(psi_deg)), np.sin(np.deg2rad(psi_deg))
    src = [s * xx + c * yy + b // 2, c * xx - s * yy + b // 2]
    return ndimage.map_coordinates(image, src, order=1)


def _lowpass(image: np.ndarray, pixel_size_a: float, cutoff_a: float) -> np.ndarray:
    k = np.hypot(
        *np.meshgrid(*[np.fft.fftfreq(n, d=pixel_size_a) for n in image.shape], indexing="ij")
    )
    return np.real(np.fft.ifft2(np.fft.fft2(image) * (k < 1 / cutoff_a)))


def test_phase_flipped_particles_average_to_the_true_projection() -> None:
    # Extraction's convention: FT(particle) ≈ -CTF · Φ · c with c > 0, CTF = -sin χ; so
    # flipping by sign(sin χ) = sign(-CTF) and undoing psi leaves a positive image of Φ.
    sim = simulate_particles(
        SPECIMEN, n_particles=300, n_views=1, box_px=64, pixel_size_a=2.0, max_shift_a=0.0,
        seed=3,
    )  # fmt: skip
    ps, truth = sim.particles, sim.truth
    optics = Optics(pixel_size_a=ps.pixel_size_a)
    total = np.zeros((64, 64))
    for k in range(len(ps)):
        ctf = ctf_2d(
            (64, 64), optics=optics, defocus_u_a=ps.defocus_u_a[k],
            defocus_v_a=ps.defocus_v_a[k], astigmatism_angle_deg=ps.astigmatism_angle_deg[k],
        )  # fmt: skip
        flipped = np.real(np.fft.ifft2(np.fft.fft2(ps.images[k]) * np.sign(-ctf)))
        total += _unturn(flipped, truth.psi_deg[k])
    mask = np.hypot(*np.mgrid[-32:32, -32:32]) < 28
    average = _lowpass(total, 2.0, 20.0)[mask]
    projection = _lowpass(truth.projections[0], 2.0, 20.0)[mask]
    r = np.corrcoef(average, projection)[0, 1]
    assert r > 0.8, r


def test_images_are_normalised_inverted_boxes_and_fast() -> None:
    start = time.perf_counter()
    sim = simulate_particles(
        SPECIMEN, n_particles=2000, n_views=10, box_px=64, pixel_size_a=2.0,
        junk_fraction={"empty": 0.04, "ice": 0.03, "carbon": 0.03}, seed=0,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert seconds < 20, seconds  # ~3 s alone; slack for a loaded 2-core machine
    images, truth = sim.particles.images, sim.truth
    assert images.shape == (2000, 64, 64) and images.dtype == np.float32
    ring = np.hypot(*np.mgrid[-32:32, -32:32]) > 0.75 * 32
    assert np.allclose(images[:, ring].mean(axis=1), 0, atol=1e-4)
    assert np.allclose(images[:, ring].std(axis=1), 1, atol=1e-3)
    counts = {kind: int((truth.junk == kind).sum()) for kind in ("", "empty", "ice", "carbon")}
    assert counts == {"": 1800, "empty": 80, "ice": 60, "carbon": 60}
    assert np.all((truth.view == -1) == (truth.junk != ""))
    assert set(np.unique(truth.view[truth.view >= 0])) == set(range(10))
    assert truth.projections.shape == (10, 64, 64)
    assert np.abs(truth.shift_a).max() <= 6.0
    lo, hi = sim.particles.defocus_u_a.min(), sim.particles.defocus_v_a.max()
    assert lo >= 8000 - 250 and hi <= 25000 + 250
    # projections are protein bright, centred on pixel b//2, and all distinct
    proj = truth.projections
    assert proj.min() > -0.05 * proj.max()
    for p in proj:
        cy, cx = ndimage.center_of_mass(p)
        assert abs(cy - 32) < 1.5 and abs(cx - 32) < 1.5
    flat = proj.reshape(10, -1)
    assert np.corrcoef(flat)[~np.eye(10, dtype=bool)].max() < 0.95
    # junk: ice lumps and carbon edges carry much more low-resolution power than particles
    low = np.array([_lowpass(im, 2.0, 40.0).std() for im in images])
    assert np.median(low[truth.junk == "ice"]) > 1.5 * np.median(low[truth.junk == ""])
    assert np.median(low[truth.junk == "carbon"]) > 1.5 * np.median(low[truth.junk == ""])
    assert np.median(low[truth.junk == "empty"]) < np.median(low[truth.junk == ""])


def test_same_seed_same_particles() -> None:
    a = simulate_particles(SPECIMEN, n_particles=20, n_views=3, box_px=32, pixel_size_a=4.0, seed=5)
    b = simulate_particles(SPECIMEN, n_particles=20, n_views=3, box_px=32, pixel_size_a=4.0, seed=5)
    assert np.array_equal(a.particles.images, b.particles.images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"junk_fraction": {"dust": 0.1}}, "junk_fraction"),
        ({"junk_fraction": {"ice": 0.7, "carbon": 0.6}}, "junk_fraction"),
        ({"box_px": 33}, "box_px"),
        ({"n_views": 0}, "n_views"),
        ({"pixel_size_a": 0.0}, "pixel_size_a"),
        ({"defocus_range_a": (9000.0, 8000.0)}, "defocus_range_a"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {
        "n_particles": 4,
        "n_views": 2,
        "box_px": 32,
        "pixel_size_a": 4.0,
    }
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        simulate_particles(SPECIMEN, **settings)  # type: ignore[arg-type]


def test_files_round_trip(tmp_path: Path) -> None:
    sim = simulate_particles(
        SPECIMEN, n_particles=40, n_views=4, box_px=32, pixel_size_a=4.0,
        junk_fraction={"ice": 0.25}, seed=2,
    )  # fmt: skip
    star = write_simulated_particles(sim, tmp_path / "sim")
    assert star == tmp_path / "sim" / "particles.star"
    back = read_particles_star(star)
    assert np.array_equal(back.images, sim.particles.images)
    assert np.allclose(back.defocus_u_a, sim.particles.defocus_u_a, atol=0.01)
    assert np.allclose(back.astigmatism_angle_deg, sim.particles.astigmatism_angle_deg, atol=1e-3)
    assert back.pixel_size_a == 4.0
    truth = read_particle_truth(tmp_path / "sim")
    assert np.array_equal(truth.view, sim.truth.view)
    assert list(truth.junk) == list(sim.truth.junk)
    assert np.allclose(truth.psi_deg, sim.truth.psi_deg, atol=1e-4)
    assert np.array_equal(truth.projections, sim.truth.projections)
    fields = json.loads((tmp_path / "sim" / "truth.json").read_text())
    assert fields["particles"]["junk"].count("ice") == 10


def test_relion_reads_the_simulated_star(
    tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    sim = simulate_particles(SPECIMEN, n_particles=12, n_views=2, box_px=32, pixel_size_a=4.0)
    write_simulated_particles(sim, tmp_path)
    if shutil.which("relion_stack_create") is None:
        need_service("relion", "relion_stack_create is not on PATH")
        return
    done = subprocess.run(
        ["relion_stack_create", "--i", "particles.star", "--o", "copy"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with mrcfile.open(tmp_path / "copy.mrcs") as mrc:
        assert np.allclose(mrc.data, sim.particles.images, atol=1e-4)


def test_cli_writes_particles(tmp_path: Path) -> None:
    args = ["simulate-particles", "--out", str(tmp_path), "--n", "30", "--box", "32"]
    result = CliRunner().invoke(
        build_app(), [*args, "--pixel-size", "4", "--views", "3", "--junk", "0.3"]
    )
    assert result.exit_code == 0, result.output
    assert "9 junk" in result.output
    assert len(read_particles_star(tmp_path / "particles.star")) == 30
    bad = CliRunner().invoke(build_app(), [*args, "--junk", "1.5"])
    assert bad.exit_code != 0 and "junk" in bad.output
