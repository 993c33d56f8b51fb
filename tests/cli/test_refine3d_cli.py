"""``cryolive simulate-particles3d`` then ``cryolive refine3d``: the files they write, RELION
reading them (and agreeing on the angle and origin conventions), and clear errors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.engines.recon3d import fsc, rotate_volume
from cryolive.engines.refine3d import symmetry_rotations, torch_available
from cryolive.io.maps import read_map, write_map

BOX, PIXEL = 32, 3.0


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim3d")
    code, output = _run(
        "simulate-particles3d", "--out", str(out), "--count", "300", "--box", str(BOX),
        "--pixel", str(PIXEL), "--snr", "0.5", "--projection", "fourier", "--seed", "3",
    )  # fmt: skip
    assert code == 0, output
    return out


@pytest.fixture(scope="module")
def refined(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refine3d")
    code, output = _run(
        "refine3d", str(sim / "particles.star"), "--ref", str(sim / "truth.mrc"),
        "--out", str(out), "--iterations", "3", "--lowpass", "25",
    )  # fmt: skip
    assert code == 0, output
    assert "resolution" in output and "FSC 0.143" in output and "global" in output
    return out


def test_simulate_writes_particles_and_truth(sim: Path) -> None:
    for name in ("particles.star", "particles.mrcs", "truth.star", "truth.mrc"):
        assert (sim / name).is_file(), name
    rows = starfile.read(sim / "particles.star", always_dict=True)["particles"]
    assert len(rows) == 300 and "rlnAngleRot" not in rows
    assert set(rows["rlnRandomSubset"]) == {1, 2}
    truth = starfile.read(sim / "truth.star", always_dict=True)["particles"]
    assert {"rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst"} <= set(truth)


def test_refine3d_writes_maps_and_tables(sim: Path, refined: Path) -> None:
    truth, _ = read_map(sim / "truth.mrc")
    for name in ("refined.mrc", "half1.mrc", "half2.mrc"):
        vol, voxel = read_map(refined / name)
        assert vol.shape == (BOX,) * 3 and voxel == pytest.approx(PIXEL)
        assert fsc(vol, truth)[1:5].min() > 0.8, name  # the particles' map, not noise
    data = starfile.read(refined / "run_data.star", always_dict=True)
    rows = data["particles"]
    assert len(rows) == 300 and "optics" in data
    assert {
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnOriginXAngst",
        "rlnOriginYAngst",
    } <= set(rows)
    given = starfile.read(sim / "particles.star", always_dict=True)["particles"]
    assert list(rows["rlnRandomSubset"]) == list(given["rlnRandomSubset"])
    tables = starfile.read(refined / "fsc.star", always_dict=True)
    curve = tables["fsc"]
    assert list(curve.columns) == [
        "rlnSpectralIndex", "rlnResolution", "rlnAngstromResolution", "rlnFourierShellCorrelation",
    ]  # fmt: skip
    assert len(curve) == BOX // 2 + 1 and curve["rlnFourierShellCorrelation"].iloc[1] > 0.9
    assert np.allclose(
        curve["rlnAngstromResolution"].iloc[1:],
        BOX * PIXEL / curve["rlnSpectralIndex"].iloc[1:],
        rtol=1e-3,
    )
    assert 2 * PIXEL <= float(tables["general"]["rlnFinalResolution"]) < 40


def test_relion_reconstructs_from_what_cryolive_writes(
    sim: Path, refined: Path, tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    if shutil.which("relion_reconstruct") is None:
        need_service("relion", "relion_reconstruct is not on PATH")
        return
    truth, _ = read_map(sim / "truth.mrc")
    for folder, star, ours in (
        (sim, "truth.star", None),
        (refined, "run_data.star", "refined.mrc"),
    ):
        out = tmp_path / f"{folder.name}.mrc"
        done = subprocess.run(
            ["relion_reconstruct", "--i", star, "--o", str(out), "--ctf"],
            cwd=folder, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        theirs, _ = read_map(out)
        # RELION reads our angles and origins as we mean them: its map is the truth's
        assert fsc(theirs, truth)[1:6].min() > 0.8, (star, fsc(theirs, truth)[:8])
        if ours is not None:
            mine, _ = read_map(folder / ours)
            assert fsc(theirs, mine)[1:6].min() > 0.8


def test_refine3d_accepts_a_point_group(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "c4"
    code, output = _run(
        "refine3d", str(sim / "particles.star"), "--ref", str(sim / "truth.mrc"),
        "--out", str(out), "--symmetry", "C4", "--iterations", "2", "--lowpass", "25",
        "--poses", "3",  # the local iteration inserts 3 posterior-weighted poses an image
    )  # fmt: skip
    assert code == 0, output
    rows = starfile.read(out / "run_data.star", always_dict=True)["particles"]
    # RELION's asymmetric unit of C4: rot in [-45°, 45°)
    assert len(rows) == 300 and rows["rlnAngleRot"].between(-45.0 - 1e-3, 45.0).all()
    vol, _ = read_map(out / "refined.mrc")  # symmetrised: a quarter turn about z leaves it
    turned = rotate_volume(vol, np.rint(symmetry_rotations("C4")[1]))  # voxels onto voxels
    inner = (slice(1, None),) * 3  # the turn about voxel 16 takes row 0 out of the box
    assert np.abs(turned - vol)[inner].max() < 1e-5 * np.abs(vol).max()


def test_bad_input_gives_clear_errors(sim: Path, tmp_path: Path) -> None:
    star, ref = str(sim / "particles.star"), str(sim / "truth.mrc")
    code, output = _run(
        "refine3d", star, "--ref", ref, "--out", str(tmp_path / "a"), "--symmetry", "Q2"
    )
    assert code == 2 and "--symmetry" in output and "Cn or Dn" in output
    code, output = _run(
        "refine3d", str(tmp_path / "none.star"), "--ref", ref, "--out", str(tmp_path / "b")
    )
    assert code == 2 and "none.star" in output
    small = write_map(tmp_path / "small.mrc", np.ones((16, 16, 16)), pixel_size_a=PIXEL)
    code, output = _run("refine3d", star, "--ref", str(small), "--out", str(tmp_path / "c"))
    assert code == 2 and "box 16" in output
    wrong = write_map(tmp_path / "wrong.mrc", np.ones((BOX,) * 3), pixel_size_a=1.0)
    code, output = _run("refine3d", star, "--ref", str(wrong), "--out", str(tmp_path / "d"))
    assert code == 2 and "voxel" in output
    code, output = _run(
        "refine3d", star, "--ref", str(tmp_path / "x.mrc"), "--out", str(tmp_path / "e")
    )
    assert code == 2 and "no such file" in output
    code, output = _run(
        "refine3d", star, "--ref", ref, "--out", str(tmp_path / "p"), "--poses", "0"
    )
    assert code == 2 and "--poses" in output
    code, output = _run("simulate-particles3d", "--out", str(tmp_path / "f"), "--box", "31")
    assert code == 2 and "even" in output
    code, output = _run("simulate-particles3d", "--out", str(tmp_path / "g"), "--snr", "-1")
    assert code == 2 and "snr" in output
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


@pytest.mark.parametrize("command", ["refine3d", "initial-model", "class3d", "postprocess"])
def test_an_unknown_engine_is_a_usage_error(command: str, tmp_path: Path) -> None:
    args = {
        "refine3d": ["p.star", "--ref", "m.mrc"],
        "initial-model": ["p.star"],
        "class3d": ["p.star", "--ref", "m.mrc"],
        "postprocess": ["h1.mrc", "h2.mrc"],
    }[command]
    code, output = _run(command, *args, "--out", str(tmp_path), "--engine", "cryosparc")
    assert code == 2 and "cryolive or relion" in output


def test_device_runs_the_search_in_torch_or_is_a_usage_error(sim: Path, tmp_path: Path) -> None:
    star, ref = str(sim / "particles.star"), str(sim / "truth.mrc")
    code, output = _run(
        "refine3d", star, "--ref", ref, "--out", str(tmp_path / "a"), "--device", "nosuchdevice"
    )
    assert code == 2 and "--device" in output and "nosuchdevice" in output
    assert not (tmp_path / "a").exists()
    code, output = _run(
        "refine3d", star, "--ref", ref, "--out", str(tmp_path / "b"), "--device", "cpu",
        "--engine", "relion",
    )  # fmt: skip
    assert code == 2 and "--device" in output and "cryolive only" in output
    if not torch_available():
        return  # the device checks above need no PyTorch; the run below does
    code, output = _run(
        "refine3d", star, "--ref", ref, "--out", str(tmp_path / "c"), "--device", "cpu",
        "--iterations", "2", "--lowpass", "25",
    )  # fmt: skip
    assert code == 0, output
    assert "PyTorch on cpu" in output and "resolution" in output
    assert (tmp_path / "c" / "refined.mrc").is_file()
