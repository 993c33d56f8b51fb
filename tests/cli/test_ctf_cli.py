"""``cryolive ctf`` / ``cryolive ice`` on MRC files: planted answers come back in the JSON the
services write; broken files are recorded as failures with a reason, and the exit code says so."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app


def _write_mrc(path: Path, image: np.ndarray, pixel_size_a: float = 2.0) -> Path:
    with warnings.catch_warnings(), mrcfile.new(path, overwrite=True) as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about NaN: planted
        mrc.set_data(image.astype(np.float32))
        mrc.voxel_size = pixel_size_a
    return path


def test_ctf_writes_results_curves_and_diagnostic(tmp_path: Path, ctf_truth: ModuleType) -> None:
    rng = np.random.default_rng(81)
    good = _write_mrc(
        tmp_path / "good.mrc",
        ctf_truth.micrograph(rng, defocus_u_a=18000.0, defocus_v_a=17400.0, angle_deg=45.0),
    )
    nan_image = ctf_truth.micrograph(rng, defocus_u_a=9000.0, defocus_v_a=9000.0)
    nan_image[10:20] = np.nan
    broken = _write_mrc(tmp_path / "nan.mrc", nan_image)
    corrupt = tmp_path / "corrupt.mrc"
    corrupt.write_bytes(b"not an mrc file at all" * 10)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        build_app(),
        ["ctf", str(good), str(broken), str(corrupt), "--out", str(out), "--box", "256"],
    )
    assert result.exit_code == 1, result.output
    record = json.loads((out / "good_ctf.json").read_text())
    assert record["status"] == "ok"
    assert record["result"]["defocus_a"] == pytest.approx(17700.0, rel=0.005)
    assert abs(record["result"]["astigmatism_angle_deg"] - 45.0) < 5.0
    assert record["optics"]["pixel_size_a"] == 2.0
    curves = json.loads((out / record["files"]["curves"]).read_text())
    assert len(curves["frequency_per_a"]) == len(curves["fit"]) > 50
    assert (out / record["files"]["diagnostic"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    failed = json.loads((out / "nan_ctf.json").read_text())
    assert (failed["status"], failed["reason"]) == ("failed", "non-finite")
    unreadable = json.loads((out / "corrupt_ctf.json").read_text())
    assert unreadable["status"] == "failed" and "corrupt.mrc" in unreadable["message"]


def test_ctf_refuses_bad_settings_and_a_missing_pixel_size(tmp_path: Path) -> None:
    image = np.random.default_rng(0).poisson(40.0, (512, 512)).astype(np.float32)
    path = _write_mrc(tmp_path / "m.mrc", image, pixel_size_a=0.0)
    runner = CliRunner()
    bad = runner.invoke(build_app(), ["ctf", str(path), "--out", str(tmp_path), "--min-res", "3"])
    assert bad.exit_code == 2 and "min_res_a" in bad.output
    no_size = runner.invoke(build_app(), ["ctf", str(path), "--out", str(tmp_path)])
    assert no_size.exit_code == 1 and "--pixel-size" in no_size.output


def test_ice_ranks_thin_and_thick_ice(tmp_path: Path, ctf_truth: ModuleType) -> None:
    rng = np.random.default_rng(82)
    paths = []
    for name, ice in [("thin", 0.2), ("thick", 0.7)]:
        image = ctf_truth.micrograph(
            rng, pixel_size_a=1.0, defocus_u_a=12000.0, defocus_v_a=12000.0, ice=ice
        )
        paths.append(str(_write_mrc(tmp_path / f"{name}.mrc", image, pixel_size_a=1.0)))
    out = tmp_path / "out"
    # 40 e/px at 1 Å/px is 40 e/Å².
    result = CliRunner().invoke(build_app(), ["ice", *paths, "--out", str(out), "--dose", "40"])
    assert result.exit_code == 0, result.output
    thin = json.loads((out / "thin_ice.json").read_text())["result"]
    thick = json.loads((out / "thick_ice.json").read_text())["result"]
    assert abs(thin["median"] - 0.2) < 0.02 and abs(thick["median"] - 0.7) < 0.02
    assert thin["minimum"] <= thin["q1"] <= thin["median"] <= thin["q3"] <= thin["maximum"]


PHASE_RANGE = ("--min-phase-shift", "30", "--max-phase-shift", "120", "--phase-shift-step", "5")


def test_ctf_phase_shift_flag_fits_a_planted_phase_plate(
    tmp_path: Path, ctf_truth: ModuleType
) -> None:
    image = ctf_truth.micrograph(
        np.random.default_rng(83), defocus_u_a=9000.0, defocus_v_a=8800.0, phase_shift_deg=70.0
    )
    path = _write_mrc(tmp_path / "vpp.mrc", image)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        build_app(),
        ["ctf", str(path), "--out", str(out), "--phase-shift", *PHASE_RANGE],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((out / "vpp_ctf.json").read_text())
    assert record["search"]["fit_phase_shift"] is True
    assert record["search"]["min_phase_shift_deg"] == 30.0
    assert record["search"]["max_phase_shift_deg"] == 120.0
    assert record["search"]["phase_shift_step_deg"] == 5.0
    assert abs(record["result"]["phase_shift_deg"] - 70.0) <= 10.0


def test_batch_goes_on_past_failures_and_ends_with_a_table(
    tmp_path: Path, ctf_truth: ModuleType
) -> None:
    rng = np.random.default_rng(84)
    good = _write_mrc(
        tmp_path / "good.mrc",
        ctf_truth.micrograph(rng, defocus_u_a=14000.0, defocus_v_a=13600.0, angle_deg=30.0),
    )
    noise = _write_mrc(tmp_path / "noise.mrc", rng.poisson(40.0, (1024, 1024)).astype(np.float32))
    no_size = _write_mrc(
        tmp_path / "nosize.mrc",
        ctf_truth.micrograph(rng, defocus_u_a=9000.0, defocus_v_a=9000.0),
        pixel_size_a=0.0,
    )
    out = tmp_path / "out"
    args = ["ctf", str(no_size), str(good), str(noise), "--out", str(out), "--box", "256"]
    result = CliRunner().invoke(
        build_app(),
        [*args, "--defocus-step", "50"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output
    table = result.stdout
    assert "CTF of 3 micrographs" in table
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if ".mrc" in line}
    assert set(rows) == {"good.mrc", "noise.mrc", "nosize.mrc"}
    assert "ok" in rows["good.mrc"] and "13800" in rows["good.mrc"]
    assert "not trusted" in rows["noise.mrc"]
    assert "failed" in rows["nosize.mrc"]
    assert "2 of 3 micrographs failed or are not trusted" in result.output
    ok = json.loads((out / "good_ctf.json").read_text())
    assert ok["status"] == "ok"
    assert ok["result"]["defocus_a"] == pytest.approx(13800.0, rel=0.005)
    assert ok["search"]["defocus_step_a"] == 50.0
    # a micrograph with no Thon rings: its files all the same, marked, the reason in words
    guess = json.loads((out / "noise_ctf.json").read_text())
    assert guess["status"] == "not-trusted"
    assert "not to be trusted" in guess["reason"] and "SD of noise" not in guess["reason"]
    assert "defocus_a" in guess["result"]
    assert len(json.loads((out / guess["files"]["curves"]).read_text())["fit"]) > 50
    assert (out / guess["files"]["diagnostic"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # no pixel size: fails alone, saying what to do
    failed = json.loads((out / "nosize_ctf.json").read_text())
    assert (failed["status"], failed["reason"]) == ("failed", "no-pixel-size")
    assert "--pixel-size" in failed["message"]


def test_known_astigmatism_option_is_held(tmp_path: Path, ctf_truth: ModuleType) -> None:
    image = ctf_truth.micrograph(
        np.random.default_rng(85), defocus_u_a=16000.0, defocus_v_a=15200.0, angle_deg=20.0
    )
    path = _write_mrc(tmp_path / "m.mrc", image)
    out = tmp_path / "out"
    args = ["ctf", str(path), "--out", str(out), "--box", "256"]
    result = CliRunner().invoke(
        build_app(), [*args, "--known-astigmatism", "300", "--known-astigmatism-angle", "45"]
    )
    assert result.exit_code == 0, result.output
    r = json.loads((out / "m_ctf.json").read_text())["result"]
    assert r["astigmatism_a"] == pytest.approx(300.0, abs=1e-3)
    assert r["astigmatism_angle_deg"] == pytest.approx(45.0, abs=1e-3)


def test_too_fine_a_resolution_is_said_in_the_options_words(tmp_path: Path) -> None:
    image = np.random.default_rng(1).poisson(40.0, (512, 512)).astype(np.float32)
    path = _write_mrc(tmp_path / "m.mrc", image, pixel_size_a=3.0)
    result = CliRunner().invoke(build_app(), ["ctf", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 1
    message = json.loads((tmp_path / "m_ctf.json").read_text())["message"]
    assert "--max-res" in message and "Nyquist" in message and "max_res_a" not in message
