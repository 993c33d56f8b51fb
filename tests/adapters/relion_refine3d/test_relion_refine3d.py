"""RELION 3.1.3's 3D programs through the adapters, on particles of a known map (``cryolive
simulate-particles3d``: 200 particles, box 24, 4 Å): each writes the files the cryolive
command writes, and what it finds is checked against the truth. Few iterations at coarse
sampling keep each RELION run short; the tolerances are for that. Skips locally without
RELION, fails in CI; a missing program and a failing RELION run are errors that say so."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.adapters.relion_refine3d import (
    Relion3DError,
    RelionMissingError,
    run_relion_class3d,
    run_relion_initial_model,
    run_relion_refine3d,
)
from cryolive.cli import build_app
from cryolive.engines.recon3d import euler_to_matrix
from cryolive.io.maps import read_map, write_map
from cryolive.io.outputs.recon3d import read_angles, read_class3d_outputs, read_fsc

BOX, PIXEL_A, COUNT = 24, 4.0, 200
LIMIT_A = 16.0  # maps are compared with the truth below this resolution


def _lowpass(volume: np.ndarray, limit_a: float = LIMIT_A) -> np.ndarray:
    k = np.fft.fftfreq(BOX, d=PIXEL_A)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    return np.fft.ifftn(np.fft.fftn(volume) * (r <= 1 / limit_a)).real


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_lowpass(a).ravel(), _lowpass(b).ravel())[0, 1])


def _angle_errors_deg(estimated: np.ndarray, true: np.ndarray) -> np.ndarray:
    """The rotation between each particle's estimated and true orientation, degrees."""
    relative = np.einsum("nji,njk->nik", euler_to_matrix(estimated), euler_to_matrix(true))
    cosine = (np.trace(relative, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, need_service: Callable[[str, str], None]) -> Path:
    """The simulated particles' folder (particles.star, truth.star, truth.mrc)."""
    if shutil.which("relion_refine") is None:
        need_service("RELION", "relion_refine is not on PATH (make tools)")
    out = tmp_path_factory.mktemp("sim")
    result = CliRunner().invoke(
        build_app(),
        ["simulate-particles3d", "--out", str(out), "--count", str(COUNT), "--box", str(BOX),
         "--pixel", str(PIXEL_A), "--snr", "0.5", "--max-origin", "1", "--seed", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_auto_refine_writes_refine3d_files_near_the_truth(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "Refine"
    result = run_relion_refine3d(
        sim / "particles.star", sim / "truth.mrc", out,
        max_iterations=2, healpix_order=1, max_shift_px=2.0,
    )  # fmt: skip
    assert (result.iterations, result.converged) == (2, False)
    truth, _ = read_map(sim / "truth.mrc")
    for name in ("refined.mrc", "half1.mrc", "half2.mrc"):
        volume, voxel = read_map(out / name)
        assert volume.shape == (BOX,) * 3 and voxel == pytest.approx(PIXEL_A, rel=1e-3)
        assert _correlation(volume, truth) > 0.9, name
    # run_data.star: every particle, in the input's order (image names valid from the new
    # folder), with its half set and pose
    data = starfile.read(out / "run_data.star", always_dict=True)["particles"]
    given = starfile.read(sim / "particles.star", always_dict=True)["particles"]

    def images(names: list[str], folder: Path) -> list[tuple[str, Path]]:
        return [(n.split("@")[0], (folder / n.split("@")[1]).resolve()) for n in names]

    assert images(data["rlnImageName"], out) == images(given["rlnImageName"], sim)
    assert set(data["rlnRandomSubset"]) == {1, 2}
    true = starfile.read(sim / "truth.star", always_dict=True)["particles"]
    errors = _angle_errors_deg(read_angles(out / "run_data.star"), read_angles(sim / "truth.star"))
    # two iterations at 30° (15° oversampled), SNR 0.5, 19 Å: most views found (random
    # orientations would give a median of 126°; measured 39°)
    assert np.median(errors) < 60.0 and np.mean(errors < 30.0) > 0.35
    # origins in Å (RELION 3.1; each iteration searches ±2 px about the last), inside the box
    origins = data[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy()
    assert np.isfinite(origins).all() and np.abs(origins).max() < BOX * PIXEL_A / 4
    assert len(true) == COUNT
    # fsc.star: read as the service reads it, the resolution where RELION put it
    fsc = read_fsc(out / "fsc.star")
    assert fsc.final_resolution_a == pytest.approx(result.resolution_a)
    assert 2 * PIXEL_A <= result.resolution_a < 30.0
    assert fsc.curves["half_maps"][1] > 0.9


def test_initial_model_writes_what_the_service_reads(sim: Path, tmp_path: Path) -> None:
    initial = run_relion_initial_model(
        sim / "particles.star", tmp_path / "InitialModel",
        iterations=3, batch_size=100, healpix_order=1, max_shift_px=1.0,
    )  # fmt: skip
    model, voxel = read_map(initial.main)
    assert initial.main.name == "initial_model.mrc" and initial.maps == (initial.main,)
    assert model.shape == (BOX,) * 3 and voxel == pytest.approx(PIXEL_A, rel=1e-3)
    assert np.isfinite(model).all() and model.std() > 0
    assert read_angles(initial.data).shape == (COUNT, 3)
    assert starfile.read(initial.model, always_dict=True)["model_classes"][
        "rlnReferenceImage"
    ].tolist() == ["initial_model.mrc"]


def test_class3d_writes_what_the_service_reads(sim: Path, tmp_path: Path) -> None:
    # two classes from the truth: both maps in the truth's frame, every particle in one
    folder = tmp_path / "Class3D"
    classes = run_relion_class3d(
        sim / "particles.star", sim / "truth.mrc", folder,
        classes=2, iterations=2, healpix_order=1, max_shift_px=1.0,
    )  # fmt: skip
    read = read_class3d_outputs(folder)
    assert [c.class_number for c in read] == [1, 2]
    assert [c.map_path.name for c in read] == ["class001.mrc", "class002.mrc"]
    assert sum(c.particles for c in read) == COUNT
    assert sum(c.distribution for c in read) == pytest.approx(1.0, abs=0.01)
    assert list(classes.particles) == [c.particles for c in read]
    truth, _ = read_map(sim / "truth.mrc")
    largest = max(read, key=lambda c: c.particles)
    assert largest.resolution_a is not None and largest.resolution_a < 40
    assert _correlation(read_map(largest.map_path)[0], truth) > 0.8


def test_a_failing_relion_run_is_an_error_with_its_log(sim: Path, tmp_path: Path) -> None:
    # a reference of another box: RELION refuses it and says why
    wrong = write_map(tmp_path / "wrong.mrc", np.zeros((32, 32, 32), np.float32), pixel_size_a=4)
    with pytest.raises(Relion3DError, match="relion_refine failed") as caught:
        run_relion_class3d(sim / "particles.star", wrong, tmp_path / "out", classes=2)
    assert "ERROR" in str(caught.value)  # RELION's own message, from its log
    # the command: exit 1 (a failed run), the log's tail on the terminal
    result = CliRunner().invoke(
        build_app(),
        ["class3d", str(sim / "particles.star"), "--ref", str(wrong),
         "--out", str(tmp_path / "cli"), "--engine", "relion"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "failed" in result.output


def test_a_missing_relion_is_a_clear_usage_error(
    sim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RelionMissingError, match="relion_refine_mpi is not on PATH"):
        run_relion_refine3d(sim / "particles.star", sim / "truth.mrc", tmp_path / "r")
    app = build_app()
    half = sim / "truth.mrc"
    for command in (
        ["refine3d", str(sim / "particles.star"), "--ref", str(half)],
        ["initial-model", str(sim / "particles.star")],
        ["class3d", str(sim / "particles.star"), "--ref", str(half)],
        ["postprocess", str(half), str(half)],
    ):
        result = CliRunner().invoke(
            app, [*command, "--out", str(tmp_path / command[0]), "--engine", "relion"]
        )
        assert result.exit_code == 2, result.output  # the services record it, never retry
        assert "not on PATH" in result.output, command[0]
    assert os.environ["PATH"] == str(tmp_path / "empty")
