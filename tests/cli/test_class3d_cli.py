"""``cryolive initial-model`` and ``cryolive class3d`` on a simulated particles.star: the files
they write (RELION 3.1, read back by RELION's own programs) and clear errors on bad input."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.io.maps import read_map, write_map
from cryolive.io.outputs.recon3d import read_initial_model_resolution

BOX, PIXEL_A, N = 32, 4.0, 200
FAST = ["--angle-step", "20", "--max-resolution", "20", "--sgd-steps", "10"]


def _sim3d() -> ModuleType:
    name = "cryolive_tests_sim3d"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "engines" / "initmodel" / "sim3d.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def particles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """particles.star of two blob maps (100 each, SNR 0.5) and their average map."""
    sim3d = _sim3d()
    rng = np.random.default_rng(4)
    a, b = sim3d.blobs(rng), sim3d.blobs(rng)
    sim, _ = sim3d.simulate([a, b], [N // 2, N // 2], rng, snr=0.5)
    star = sim3d.write_star(sim.stack, tmp_path_factory.mktemp("particles") / "Extract")
    return star, 0.5 * (a.volume(BOX) + b.volume(BOX))


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.fixture(scope="module")
def class3d_out(
    particles: tuple[Path, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """``cryolive class3d`` run once on the particles (2 classes), its folder and output."""
    star, reference = particles
    root = tmp_path_factory.mktemp("class3d")
    ref = write_map(root / "ref.mrc", reference, pixel_size_a=PIXEL_A)
    out = root / "Class3D"
    code, output = _run(
        "class3d", str(star), "--ref", str(ref), "--out", str(out), "--classes", "2",
        "--iterations", "1", *FAST,
    )  # fmt: skip
    assert code == 0, output
    return out, output


def test_initial_model_writes_maps_and_particles(
    particles: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    star, _ = particles
    out = tmp_path / "InitialModel"
    code, output = _run(
        "initial-model", str(star), "--out", str(out), "--classes", "2",
        "--iterations", "3", "--batch", "60", "--resolution", "20", "--angle-step", "30",
    )  # fmt: skip
    assert code == 0, output
    for name in ("initial_model.mrc", "initial_model_class001.mrc", "initial_model_class002.mrc"):
        volume, voxel = read_map(out / name)
        assert volume.shape == (BOX, BOX, BOX) and voxel == pytest.approx(PIXEL_A)
        assert volume.std() > 0
    data = starfile.read(out / "run_data.star", always_dict=True)["particles"]
    assert len(data) == N
    assert set(data["rlnClassNumber"]) <= {1, 2}
    assert {"rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst"} <= set(data)
    # the stack is found from the new folder
    assert (out / data["rlnImageName"][0].split("@")[1]).resolve().is_file()
    model = starfile.read(out / "run_model.star", always_dict=True)
    classes = model["model_classes"]
    assert classes["rlnClassDistribution"].sum() == pytest.approx(1.0, abs=1e-4)
    # each class's own half-set estimate, between Nyquist and the box; the service reads the
    # main (largest) class's for the CryoemInitialModel row
    estimates = classes["rlnEstimatedResolution"].to_numpy()
    assert np.all((estimates > 2 * PIXEL_A) & (estimates <= BOX * PIXEL_A))
    main = int(np.argmax(classes["rlnClassDistribution"].to_numpy()))
    assert read_initial_model_resolution(out) == pytest.approx(estimates[main])
    assert read_initial_model_resolution(tmp_path) is None  # no run_model.star there


def test_class3d_writes_classes_model_and_particles(class3d_out: tuple[Path, str]) -> None:
    out, output = class3d_out
    assert "best class" in output
    for c in (1, 2):
        with mrcfile.open(out / f"class{c:03d}.mrc") as mrc:
            assert mrc.data.shape == (BOX, BOX, BOX)
    model = starfile.read(out / "model.star", always_dict=True)
    classes = model["model_classes"]
    assert list(classes["rlnReferenceImage"]) == ["class001.mrc", "class002.mrc"]
    assert classes["rlnClassDistribution"].sum() == pytest.approx(1.0, abs=1e-4)
    assert (classes["rlnEstimatedResolution"] > 2 * PIXEL_A).all()
    metrics = model["cryolive_classes"]
    assert metrics["cryoliveBest"].sum() == 1
    assert metrics["cryoliveAngularEfficiency"].between(0, 1).all()
    data = starfile.read(out / "run_data.star", always_dict=True)["particles"]
    assert len(data) == N and set(data["rlnClassNumber"]) <= {1, 2}
    sizes = np.bincount(data["rlnClassNumber"], minlength=3)[1:] / N
    assert np.allclose(sizes, classes["rlnClassDistribution"], atol=1e-4)


def test_bad_input_gives_clear_errors(particles: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    star, reference = particles
    code, output = _run("initial-model", str(tmp_path / "none.star"), "--out", str(tmp_path))
    assert code == 2 and "none.star" in output
    code, output = _run("initial-model", str(star), "--out", str(tmp_path), "--symmetry", "Q")
    assert code == 2 and "symmetry must be Cn or Dn" in output
    small = write_map(tmp_path / "small.mrc", reference[:16, :16, :16], pixel_size_a=PIXEL_A)
    code, output = _run("class3d", str(star), "--ref", str(small), "--out", str(tmp_path))
    assert code == 2 and "box 16" in output
    code, output = _run("class3d", str(star), "--ref", str(tmp_path / "x.mrc"), "--out", "o")
    assert code == 2 and "no such file" in output
    code, output = _run(
        "class3d", str(star), "--ref", str(star), "--out", str(tmp_path)
    )  # a STAR file is no map
    assert code == 2 and "not a readable MRC map" in output


def test_relion_reconstructs_our_class_from_our_angles(
    class3d_out: tuple[Path, str], tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    """RELION reads run_data.star (angles, origins, class) and class001.mrc, and its
    reconstruction of class 1 from our angles is our class map (same Euler convention)."""
    if shutil.which("relion_reconstruct") is None:
        need_service("relion_reconstruct", "not on PATH (Debian: apt-get install relion)")
    out, _ = class3d_out
    rec = tmp_path / "relion_class1.mrc"
    run = subprocess.run(
        ["relion_reconstruct", "--i", "run_data.star", "--o", str(rec), "--ctf", "--class", "1"],
        cwd=out, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    theirs, voxel = read_map(rec)
    ours, _ = read_map(out / "class001.mrc")
    assert voxel == pytest.approx(PIXEL_A, rel=1e-3)
    shell = BOX * PIXEL_A / 20.0
    lowpass = _sim3d().lowpass
    corr = np.corrcoef(lowpass(theirs, shell).ravel(), lowpass(ours, shell).ravel())[0, 1]
    assert corr > 0.8
    stats = subprocess.run(
        ["relion_image_handler", "--i", "class001.mrc", "--stats"],
        cwd=out, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert stats.returncode == 0 and f"{BOX} x {BOX} x {BOX}" in stats.stdout.replace("  ", " ")
