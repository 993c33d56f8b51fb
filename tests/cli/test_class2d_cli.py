"""``cryolive class2d`` on simulated particles in two STAR files: the files it writes, the classes
they carry (those of the engine run directly), and clear errors on bad input."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.engines.class2d import Class2DSettings, classify_2d
from cryolive.io.particle_files import read_particle_stars, read_particles_star
from cryolive.simulate import procedural_specimen, simulate_particles, write_simulated_particles

K, ITERATIONS, DIAMETER_A = 4, 4, 110.0
SETTINGS = ["--classes", str(K), "--diameter", "110", "--iterations", str(ITERATIONS)]


@pytest.fixture(scope="module")
def stars(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two particles.star files (200 particles each, box 40 at 3 Å, 3 views, 10 % junk), each
    with its own stack in its own folder."""
    root = tmp_path_factory.mktemp("particles")
    paths = []
    for seed in (1, 2):
        sim = simulate_particles(
            procedural_specimen(seed=1), n_particles=200, n_views=3, box_px=40,
            pixel_size_a=3.0, junk_fraction={"empty": 0.05, "ice": 0.05}, seed=seed,
        )  # fmt: skip
        paths.append(write_simulated_particles(sim, root / f"batch{seed}"))
    return paths


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["class2d", *args])
    return result.exit_code, " ".join(result.output.replace("│", " ").split())  # rich's box


def test_class2d_writes_classes_that_match_the_engine(stars: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "class2d"
    code, output = _run(*map(str, stars), "--out", str(out), *SETTINGS)
    assert code == 0, output
    assert "particles" in output and "selected" in output  # the summary table
    names = ["run_classes.mrcs", "run_model.star", "run_data.star", "run_selected_data.star"]
    names += [f"class_{c:03d}.png" for c in range(1, K + 1)] + ["classes.png"]
    for name in names:
        assert (out / name).is_file(), name
    with mrcfile.open(out / "run_classes.mrcs") as mrc:
        assert mrc.data.shape[0] == K
    model = starfile.read(out / "run_model.star", always_dict=True)
    assert len(model["model_classes"]) == K
    data = starfile.read(out / "run_data.star", always_dict=True)["particles"]
    assert len(data) == 400
    counts = np.bincount(data["rlnClassNumber"] - 1, minlength=K)
    np.testing.assert_array_equal(counts, model["cryolive_classes"]["cryoliveParticles"])
    # The same classes as the engine run directly on the same particles and settings.
    particles = read_particle_stars(stars)
    settings = Class2DSettings(
        n_classes=K, particle_diameter_a=DIAMETER_A, iterations=ITERATIONS, seed=0
    )
    direct = classify_2d(particles, settings)
    np.testing.assert_array_equal(data["rlnClassNumber"].to_numpy() - 1, direct.assignment)
    # The joined data star names the stacks relative to its own folder: it reads back whole.
    again = read_particles_star(out / "run_data.star")
    np.testing.assert_array_equal(again.images, particles.images)
    selected = starfile.read(out / "run_selected_data.star", always_dict=True)["particles"]
    assert len(selected) == int(direct.selected[direct.assignment].sum())


def test_bad_input_fails_clearly(stars: list[Path], tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    code, output = _run(str(tmp_path / "missing.star"), "--out", out, *SETTINGS)
    assert code == 2 and "missing.star: no such file" in output
    text = tmp_path / "notes.star"
    text.write_bytes(b"\x00\x01 not a star file")
    code, output = _run(str(text), "--out", out, *SETTINGS)
    assert code == 2 and "notes.star" in output and "STAR" in output
    code, output = _run(str(stars[0]), "--out", out, "--classes", "0")
    assert code == 2 and "n_classes: must be at least 1" in output
    code, output = _run(str(stars[0]), "--out", out, "--classes", "150")
    assert code == 2 and "need at least 2 per class" in output
    code, output = _run(str(stars[0]), "--out", out, "--engine", "cryosparc")
    assert code == 2 and "--engine" in output
    assert not (tmp_path / "out" / "run_data.star").exists()


def test_relion_engine_joins_the_stars(
    stars: list[Path], tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    if shutil.which("relion_refine") is None:
        need_service("relion", "relion_refine is not on PATH")
        return
    out = tmp_path / "relion"
    code, output = _run(
        *map(str, stars), "--out", str(out), "--classes", "3", "--diameter", "110",
        "--iterations", "2", "--engine", "relion",
    )  # fmt: skip
    assert code == 0, output
    joined = starfile.read(out / "particles_joined.star", always_dict=True)["particles"]
    assert len(joined) == 400
    data = starfile.read(out / "run_data.star", always_dict=True)["particles"]
    assert list(data["rlnImageName"]) == list(joined["rlnImageName"])
    assert set(data["rlnClassNumber"]) <= {1, 2, 3}
    assert "relion_refine" in output
    done = subprocess.run(
        ["relion_star_handler", "--i", "run_data.star", "--o", "copy.star"],
        cwd=out, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
